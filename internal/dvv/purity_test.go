package dvv

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPure enforces doc.go's promise: the package does no I/O, reads no clock
// and draws no randomness, so every decision it makes is a function of its
// inputs. Tests may import what they like.
func TestPure(t *testing.T) {
	forbidden := []string{
		"crypto/rand", "io/fs", "io/ioutil", "log", "math/rand", "net", "os",
		"path/filepath", "syscall", "time",
		"github.com/cockroachdb/pebble", "github.com/hashicorp/memberlist",
		"go.uber.org/zap", "github.com/prometheus",
	}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %q: package dvv must stay pure", name, path)
				}
			}
		}
		checked++
	}
	require.NotZero(t, checked, "no source files found")
}
