package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// purePackages are the directories (from the module root) whose production
// code must stay pure. Add a package here when it is created.
var purePackages = []string{"ring", "quorum", "internal/dvv", "hints", "antientropy", "internal/pace"}

// forbidden imports, and everything under them. time is allowed for its
// types (a Duration is a number); its clock is not (clockFuncs).
var forbidden = []string{
	"crypto/rand", "io/fs", "io/ioutil", "log", "math/rand", "net", "os", "os/exec",
	"path/filepath", "syscall",
	"github.com/cockroachdb/pebble", "github.com/hashicorp/memberlist",
	"go.uber.org/zap", "github.com/prometheus",
}

// clockFuncs are the parts of package time that read or wait on the clock.
var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
	"NewTimer": true, "NewTicker": true, "Tick": true,
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

func TestPurePackages(t *testing.T) {
	root := moduleRoot(t)
	for _, pkg := range purePackages {
		t.Run(pkg, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			checked := 0
			for _, name := range files {
				if strings.HasSuffix(name, "_test.go") {
					continue
				}
				f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
				if err != nil {
					t.Fatal(err)
				}
				checked++
				for _, imp := range f.Imports {
					path, err := strconv.Unquote(imp.Path.Value)
					if err != nil {
						t.Fatal(err)
					}
					for _, bad := range forbidden {
						if path == bad || strings.HasPrefix(path, bad+"/") {
							t.Errorf("%s imports %q: package %s must stay free of I/O, clocks, randomness and logging",
								fset.Position(imp.Pos()), path, pkg)
						}
					}
				}
				timeName := importName(f, "time")
				ast.Inspect(f, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.GoStmt:
						t.Errorf("%s starts a goroutine: package %s must not; node owns them", fset.Position(n.Pos()), pkg)
					case *ast.SelectorExpr:
						if x, ok := n.X.(*ast.Ident); ok && timeName != "" && x.Name == timeName && clockFuncs[n.Sel.Name] {
							t.Errorf("%s uses time.%s: package %s must take time as an input, never read the clock",
								fset.Position(n.Pos()), n.Sel.Name, pkg)
						}
					}
					return true
				})
			}
			if checked == 0 {
				t.Fatalf("no source files in %s: the check would pass vacuously", pkg)
			}
		})
	}
}
