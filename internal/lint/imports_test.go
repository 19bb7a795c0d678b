package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/cairnkv/cairn"

// sourceFile is one parsed production (non-test) file of the module.
type sourceFile struct {
	pkg  string // directory from the module root, "." for the root
	name string
	file *ast.File
}

// productionFiles parses every non-test Go file of the module.
func productionFiles(t *testing.T, fset *token.FileSet) []sourceFile {
	t.Helper()
	root := moduleRoot(t)
	var files []sourceFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		files = append(files, sourceFile{pkg: filepath.ToSlash(rel), name: p, file: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d source files: the walk is broken and every check would pass vacuously", len(files))
	}
	return files
}

func imports(f *ast.File) []string {
	var out []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		out = append(out, p)
	}
	return out
}

// importName is the name a file uses for the package imported as p, or ""
// when the file does not import it.
func importName(f *ast.File, p string) string {
	for _, imp := range f.Imports {
		if got, _ := strconv.Unquote(imp.Path.Value); got != p {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return path.Base(p)
	}
	return ""
}

func under(pkg string, roots ...string) bool {
	for _, r := range roots {
		if pkg == r || strings.HasPrefix(pkg, r+"/") {
			return true
		}
	}
	return false
}

// TestTestSupportOnlyFromTests: the fault-injecting network and the test
// scripts' object notation are test support; no production code may be
// able to cut itself off, or carry a parser it never needs.
func TestTestSupportOnlyFromTests(t *testing.T) {
	fset := token.NewFileSet()
	for _, support := range []string{"internal/faultnet", "internal/dvvtext"} {
		for _, f := range productionFiles(t, fset) {
			if f.pkg == support {
				continue
			}
			for _, p := range imports(f.file) {
				if p == module+"/"+support {
					t.Errorf("%s imports %s: only tests may", f.name, support)
				}
			}
		}
	}
}

// TestLoggingAndMetricsOwners: libraries stay silent and measurable (STYLE
// principle 9). Only the daemon (node and the packages under it) and the
// binary log with zap or keep Prometheus metrics (client_golang); the rest
// report through return values, stats and hooks. Reading another process's
// metrics (prometheus/common's parsers, as the benchmark does) is not
// keeping metrics.
func TestLoggingAndMetricsOwners(t *testing.T) {
	owners := []string{"node", "cmd"}
	fset := token.NewFileSet()
	for _, f := range productionFiles(t, fset) {
		if under(f.pkg, owners...) && f.pkg != "node/coord" {
			continue
		}
		for _, p := range imports(f.file) {
			if under(p, "go.uber.org/zap", "github.com/prometheus/client_golang") {
				t.Errorf("%s imports %s: only node and cmd log and keep metrics", f.name, p)
			}
		}
	}
}

// TestInternalErrorsKeepTheirCause: an error reported as cairn.ErrInternal
// keeps the error that caused it in its chain (%w, not %v), so that
// errors.Is and errors.As still find it (a pebble corruption, a closed
// store) wherever it is handled.
func TestInternalErrorsKeepTheirCause(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, f := range productionFiles(t, fset) {
		ast.Inspect(f.file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isSelector(call.Fun, "fmt", "Errorf") || len(call.Args) < 3 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || !isInternal(call.Args[1]) {
				return true
			}
			checked++
			format, _ := strconv.Unquote(lit.Value)
			verbs := formatVerbs(format)
			for i, arg := range call.Args[1:] {
				if i < len(verbs) && looksLikeError(arg) && verbs[i] != 'w' {
					t.Errorf("%s: %%%c drops the cause from the chain of an ErrInternal error: use %%w",
						fset.Position(arg.Pos()), verbs[i])
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no fmt.Errorf wrapping cairn.ErrInternal found: the check is broken")
	}
}

func isSelector(e ast.Expr, x, sel string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == x && s.Sel.Name == sel
}

func isInternal(e ast.Expr) bool {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name == "ErrInternal"
	}
	return isSelector(e, "cairn", "ErrInternal")
}

// looksLikeError: the names errors go by in this code base.
func looksLikeError(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "err" || strings.HasSuffix(e.Name, "Err")
	case *ast.CallExpr:
		s, ok := e.Fun.(*ast.SelectorExpr)
		return ok && s.Sel.Name == "Err" && len(e.Args) == 0
	}
	return false
}

// formatVerbs lists the verb letter of each argument a format consumes.
func formatVerbs(format string) []byte {
	var verbs []byte
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[i]) >= 0 {
			i++
		}
		if i < len(format) && format[i] != '%' {
			verbs = append(verbs, format[i])
		}
	}
	return verbs
}

// TestCoordinatorDependencies: the request path's decisions can be scripted
// without a network, a disk or gossip because node/coord depends on none
// of them, directly or through another package.
func TestCoordinatorDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/node/coord").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed only %q", out)
	}
	for _, d := range deps {
		if under(d, "net", "github.com/cockroachdb/pebble", "github.com/hashicorp/memberlist",
			"go.uber.org/zap", "github.com/prometheus", module+"/internal/transport", module+"/internal/store",
			module+"/internal/membership") {
			t.Errorf("node/coord depends on %s", d)
		}
	}
}
