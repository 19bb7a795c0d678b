package store

import (
	"errors"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

// set is a batch write that replaces the object with one sibling of v.
func set(p uint32, key, v string) BatchWrite {
	return BatchWrite{P: p, Bucket: "b", Key: []byte(key), Fn: func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(cur.VV, "n1.test", []byte(v), false, 1)), true, nil
	}}
}

// TestModifyBatchAppliesEachWriteOnItsOwn: the writes of a batch land in
// one commit and one fsync; a write whose fn fails is the only one left
// out; a key written twice sees the first write; the hook sees each.
func TestModifyBatchAppliesEachWriteOnItsOwn(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	var hooked []string
	o.OnObjectWrite = func(_ uint32, _ string, key []byte, old dvv.Object, hadOld bool, next dvv.Object) {
		hooked = append(hooked, string(key))
		if string(key) == "a" && hadOld {
			require.Len(t, old.Siblings, 1, "the second write of a sees the first")
		}
	}
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	put(t, s, 1, "b", []byte("c"), "old")
	before := s.Stats()

	refused := errors.New("refused")
	chain := BatchWrite{P: 1, Bucket: "b", Key: []byte("a"), Fn: func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		require.True(t, found, "the batch's first write of a is visible to its second")
		return mustUpdate(cur.Update(nil, "n1.other", []byte("a2"), false, 2)), true, nil
	}}
	errs := s.ModifyBatch([]BatchWrite{
		set(1, "a", "a1"),
		{P: 1, Bucket: "b", Key: []byte("c"), Fn: func(dvv.Object, bool) (dvv.Object, bool, error) { return dvv.Object{}, false, refused }},
		set(2, "d", "d1"),
		chain,
		{P: 1, Bucket: "b", Key: []byte("e"), Fn: func(cur dvv.Object, _ bool) (dvv.Object, bool, error) { return cur, false, nil }},
	}, true)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], refused)
	require.NoError(t, errs[2])
	require.NoError(t, errs[3])
	require.NoError(t, errs[4])

	a, found, err := s.Get(1, "b", []byte("a"))
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, a.Siblings, 2, "a holds both writes: the second did not replace the first")
	v, ok := valueOf(t, s, 1, "b", []byte("c"))
	require.True(t, ok)
	require.Equal(t, "old", v, "the refused write changed nothing")
	v, ok = valueOf(t, s, 2, "b", []byte("d"))
	require.True(t, ok)
	require.Equal(t, "d1", v)
	_, found, err = s.Get(1, "b", []byte("e"))
	require.NoError(t, err)
	require.False(t, found, "a write that chose not to write wrote nothing")

	after := s.Stats()
	require.Equal(t, uint64(3), after.Writes-before.Writes)
	require.Equal(t, uint64(3), after.SyncedWrites-before.SyncedWrites)
	require.Equal(t, uint64(1), after.WALSyncs-before.WALSyncs, "one fsync for the batch")
	require.Equal(t, []string{"c", "a", "d", "a"}, hooked)

	// What the batch wrote survives a restart.
	require.NoError(t, s.Close())
	s2 := openAt(t, dir)
	v, ok = valueOf(t, s2, 2, "b", []byte("d"))
	require.True(t, ok)
	require.Equal(t, "d1", v)
}

// TestModifyBatchAfterClose: every write gets ErrClosed.
func TestModifyBatchAfterClose(t *testing.T) {
	s, err := Open(testOptions(t.TempDir()))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	for _, err := range s.ModifyBatch([]BatchWrite{set(1, "a", "x"), set(1, "b", "y")}, true) {
		require.ErrorIs(t, err, ErrClosed)
	}
}
