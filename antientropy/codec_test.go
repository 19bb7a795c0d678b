package antientropy

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
)

func filledTree(tb testing.TB, shape Shape, keys int) *Tree {
	tb.Helper()
	tree, err := NewTree(shape)
	require.NoError(tb, err)
	for i := range keys {
		tree.Update("b", fmt.Appendf(nil, "key-%d", i), Absent, uint64(i+1))
	}
	return tree
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, shape := range []Shape{{1, 1}, {2, 1}, {16, 4}, DefaultShape(), {MaxSegments, 256}} {
		t.Run(shape.String(), func(t *testing.T) {
			tree := filledTree(t, shape, 100)
			raw, err := tree.MarshalBinary()
			require.NoError(t, err)
			require.Len(t, raw, headerLen+8*shape.Segments+checksumLen)
			var back Tree
			require.NoError(t, back.UnmarshalBinary(raw))
			require.True(t, back.Equal(tree))
			require.Equal(t, tree.Keys(), back.Keys())
			require.Equal(t, tree.Root(), back.Root())
			// The loaded tree keeps working: the same write lands alike.
			tree.Update("b", []byte("new"), Absent, 7)
			back.Update("b", []byte("new"), Absent, 7)
			require.True(t, back.Equal(tree))
		})
	}
}

// TestUnmarshalCorrupt: every kind of damage is an ErrCorrupt error and
// leaves the target tree as it was.
func TestUnmarshalCorrupt(t *testing.T) {
	good, err := filledTree(t, Shape{16, 4}, 20).MarshalBinary()
	require.NoError(t, err)
	resum := func(b []byte) []byte {
		body := b[:len(b)-checksumLen]
		binary.LittleEndian.PutUint64(b[len(body):], xxhash.Sum64(body))
		return b
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "shorter than a header"},
		{"header only", good[:headerLen], "shorter than a header"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'x'; return resum(b) }), "bad magic"},
		{"future version", edit(func(b []byte) []byte { b[2] = 2; return resum(b) }), "version 2"},
		{"too many segments", edit(func(b []byte) []byte { b[3] = 17; return resum(b) }), "shape 2^17"},
		{"huge shape", edit(func(b []byte) []byte { b[3] = 255; return resum(b) }), "shape 2^255"},
		{"more branches than segments", edit(func(b []byte) []byte { b[4] = 5; return resum(b) }), "2^5 branches"},
		{"shape disagrees with length", edit(func(b []byte) []byte { b[3] = 5; b[4] = 2; return resum(b) }), "want 277"},
		{"truncated", good[:len(good)-1], "want 149"},
		{"trailing byte", append(append([]byte(nil), good...), 0), "want 149"},
		{"flipped segment bit", edit(func(b []byte) []byte { b[headerLen+3] ^= 0x10; return b }), "checksum"},
		{"flipped key count bit", edit(func(b []byte) []byte { b[6] ^= 1; return b }), "checksum"},
		{"flipped checksum bit", edit(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := filledTree(t, DefaultShape(), 5)
			before, err := tree.MarshalBinary()
			require.NoError(t, err)
			err = tree.UnmarshalBinary(tt.in)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, tt.want)
			after, err := tree.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, before, after, "a failed load changed the tree")
		})
	}
}

// allocated reports the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// FuzzUnmarshalTree feeds arbitrary bytes to UnmarshalBinary: it must
// never panic, never allocate more than 1 MiB for an input of at most 64
// bytes, and whatever it accepts must save back to the same bytes.
func FuzzUnmarshalTree(f *testing.F) {
	for _, shape := range []Shape{{1, 1}, {2, 2}, {4, 2}} {
		raw, err := filledTree(f, shape, 3).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(raw[:len(raw)-1])
	}
	f.Add([]byte("ct\x01\x10\x00"))
	f.Add([]byte("ct\x01\x10\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var tree Tree
		var err error
		n := allocated(func() { err = tree.UnmarshalBinary(in) })
		if len(in) <= 64 && n > 1<<20 {
			t.Fatalf("%d-byte input allocated %d bytes", len(in), n)
		}
		if err != nil {
			return
		}
		out, err := tree.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted input does not save: %v", err)
		}
		if string(out) != string(in) {
			t.Fatalf("accepted %x, saves as %x", in, out)
		}
	})
}
