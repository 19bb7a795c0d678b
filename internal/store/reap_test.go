package store

import (
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

// tombstone writes a delete of key's current siblings by actor, and
// returns the object left: tombstones only.
func tombstone(t *testing.T, s *Store, p uint32, bucket string, key []byte, actor string) dvv.Object {
	t.Helper()
	obj, err := s.Modify(p, bucket, key, true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(cur.VV, actor, nil, true, 1)), true, nil
	})
	require.NoError(t, err)
	require.False(t, obj.Found())
	return obj
}

func TestReapRemovesOnlyTheTombstoneChecked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)
	var hooked []dvv.Object
	s.opts.OnObjectWrite = func(_ uint32, _ string, _ []byte, _ dvv.Object, _ bool, obj dvv.Object) { hooked = append(hooked, obj) }
	actor, err := s.Actor(7)
	require.NoError(t, err)

	live := put(t, s, 7, "b", []byte("live"), "v")
	_, err = s.Reap(7, "b", []byte("live"), live)
	require.Error(t, err, "a live object is never reaped")

	for range 5 {
		put(t, s, 7, "b", []byte("gone"), "v")
	}
	put(t, s, 7, "b", []byte("gone"), "v")
	// Written by the partition's actor, so the floor follows its dots.
	_, err = s.Modify(7, "b", []byte("gone"), true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(cur.VV, actor, []byte("w"), false, 2)), true, nil
	})
	require.NoError(t, err)
	old := tombstone(t, s, 7, "b", []byte("gone"), actor)
	newer := tombstone(t, s, 7, "b", []byte("gone"), actor)
	require.False(t, old.Equal(newer))

	ok, err := s.Reap(7, "b", []byte("gone"), old)
	require.NoError(t, err)
	require.False(t, ok, "the copy moved past the tombstone checked: kept")
	_, found, err := s.Get(7, "b", []byte("gone"))
	require.NoError(t, err)
	require.True(t, found)

	hooked = nil
	ok, err = s.Reap(7, "b", []byte("gone"), newer)
	require.NoError(t, err)
	require.True(t, ok)
	_, found, err = s.Get(7, "b", []byte("gone"))
	require.NoError(t, err)
	require.False(t, found)
	require.Len(t, hooked, 1, "anti-entropy's hook sees the removal")
	require.True(t, hooked[0].Empty())
	require.Equal(t, uint64(1), s.Stats().Reaped)

	floor, err := s.ReapFloor(7, actor)
	require.NoError(t, err)
	require.Equal(t, newer.VV[actor], floor, "the actor mints above every dot of the reaped key")
	floor, err = s.ReapFloor(7, "someone-else")
	require.NoError(t, err)
	require.Zero(t, floor)
	floor, err = s.ReapFloor(8, actor)
	require.NoError(t, err)
	require.Zero(t, floor)

	ok, err = s.Reap(7, "b", []byte("gone"), newer)
	require.NoError(t, err)
	require.False(t, ok, "nothing left to reap")

	w1, err := s.BumpWitness()
	require.NoError(t, err)
	w2, err := s.BumpWitness()
	require.NoError(t, err)
	require.Equal(t, w1+1, w2)
	id, err := s.DirID()
	require.NoError(t, err)
	require.NotEmpty(t, id)
	require.NoError(t, s.CompactObjects(t.Context()))
	require.NoError(t, s.Close())

	// All of it survives a restart.
	s = openAt(t, dir)
	_, found, err = s.Get(7, "b", []byte("gone"))
	require.NoError(t, err)
	require.False(t, found)
	floor, err = s.ReapFloor(7, actor)
	require.NoError(t, err)
	require.Equal(t, newer.VV[actor], floor)
	w, err := s.Witness()
	require.NoError(t, err)
	require.Equal(t, w2, w)
	again, err := s.DirID()
	require.NoError(t, err)
	require.Equal(t, id, again)
	require.Equal(t, "v", func() string { v, _ := valueOf(t, s, 7, "b", []byte("live")); return v }())
}

// A directory started empty has a new identity: witness counts recorded
// for another directory are not compared with it.
func TestDirIDDiffersBetweenDirectories(t *testing.T) {
	a, err := openTest(t).DirID()
	require.NoError(t, err)
	b, err := openTest(t).DirID()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
}
