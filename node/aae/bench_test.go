package aae

import (
	"fmt"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
)

var benchValue = make([]byte, 100)

func benchOverwrite(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
	return mustUpdate(cur.Update(cur.VV, "n1.0123456789abcdef", benchValue, false, 1)), true, nil
}

// BenchmarkWritePathTreeHook is the write path's cost of anti-entropy: an
// object write (unsynced, so the disk does not hide the CPU) with and
// without the tree hook, over 100,000 keys written again and again.
func BenchmarkWritePathTreeHook(b *testing.B) {
	for _, hooked := range []bool{false, true} {
		b.Run(map[bool]string{false: "without", true: "with"}[hooked], func(b *testing.B) {
			o := store.DefaultOptions(b.TempDir(), "n1")
			o.NoSyncWrites = true
			if hooked {
				NewTrees(1024).Hook(&o)
			}
			s, err := store.Open(o)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := fmt.Appendf(nil, "key-%08d", i%100_000)
				if _, err := s.Modify(uint32(i%1024), "b", k, false, benchOverwrite); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTreeHook is the hook alone: two Versions and one XOR.
func BenchmarkTreeHook(b *testing.B) {
	t := NewTrees(1024)
	old := mustUpdate(dvv.Object{}.Update(nil, "n1.0123456789abcdef", benchValue, false, 1))
	obj := mustUpdate(old.Update(old.VV, "n1.0123456789abcdef", benchValue, false, 2))
	key := []byte("key-00000001")
	b.ReportAllocs()
	for i := range b.N {
		t.OnWrite(uint32(i&1023), "b", key, old, true, obj)
	}
}
