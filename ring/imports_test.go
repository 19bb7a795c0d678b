package ring

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure fails if production code reaches for I/O, a clock, randomness or
// the cluster's infrastructure: the ring must be a function of its inputs.
func TestPure(t *testing.T) {
	forbidden := []string{
		"net", "os", "time", "syscall", "log", "math/rand", "math/rand/v2", "crypto/rand",
		"github.com/cockroachdb/pebble", "github.com/cockroachdb/pebble/v2", "github.com/hashicorp/memberlist",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
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
					t.Errorf("%s imports %q: package ring must stay pure (see doc.go)", name, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no production files found: the check would pass vacuously")
	}
}
