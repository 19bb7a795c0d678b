package store

import (
	"regexp"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

var actorPattern = regexp.MustCompile(`^n1\.[0-9a-f]{16}$`)

func TestActorIsStableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)
	a7, err := s.Actor(7)
	require.NoError(t, err)
	require.Regexp(t, actorPattern, a7)
	again, err := s.Actor(7)
	require.NoError(t, err)
	require.Equal(t, a7, again)
	a8, err := s.Actor(8)
	require.NoError(t, err)
	require.NotEqual(t, a7, a8, "each partition has its own actor")
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	require.False(t, s.Stats().UncleanStart)
	got, err := s.Actor(7)
	require.NoError(t, err)
	require.Equal(t, a7, got)
}

func TestActorIsNewAfterDropPartition(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)
	before, err := s.Actor(7)
	require.NoError(t, err)
	other, err := s.Actor(8)
	require.NoError(t, err)
	require.NoError(t, s.DropPartition(7))
	after, err := s.Actor(7)
	require.NoError(t, err)
	require.NotEqual(t, before, after)
	require.NoError(t, s.DropPartition(9), "dropping a partition never held is fine")
	require.NoError(t, s.Close())

	// The drop and the new actor are on disk, not only in the cache.
	s = openAt(t, dir)
	got, err := s.Actor(7)
	require.NoError(t, err)
	require.Equal(t, after, got)
	got, err = s.Actor(8)
	require.NoError(t, err)
	require.Equal(t, other, got)
}

func TestActorIsNewInAFreshDir(t *testing.T) {
	a, err := openTest(t).Actor(1)
	require.NoError(t, err)
	b, err := openTest(t).Actor(1)
	require.NoError(t, err)
	require.NotEqual(t, a, b)
}

func TestConcurrentFirstActorCallsAgree(t *testing.T) {
	s := openTest(t)
	const callers = 16
	got := make([]string, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.Actor(3)
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		require.Equal(t, got[0], got[i])
	}
	stored, closer, err := s.db.Get(actorKey(3))
	require.NoError(t, err)
	require.Equal(t, got[0], string(stored))
	require.NoError(t, closer.Close())
}

// A Store that never reached Close may have handed out dots that are not on
// disk; its actors must not mint again. (crash_test.go does this with a real
// kill -9.)
func TestUncleanStartRetiresActors(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)
	before, err := s.Actor(7)
	require.NoError(t, err)
	put(t, s, 7, "b", []byte("k"), "kept")
	require.NoError(t, s.db.Close(), "skip Store.Close: the running marker stays")

	s = openAt(t, dir)
	require.True(t, s.Stats().UncleanStart)
	after, err := s.Actor(7)
	require.NoError(t, err)
	require.NotEqual(t, before, after)
	v, found := valueOf(t, s, 7, "b", []byte("k"))
	require.True(t, found, "retiring actors keeps the data")
	require.Equal(t, "kept", v)

	obj, err := s.Modify(7, "b", []byte("k"), true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(nil, after, []byte("new"), false, 2)), true, nil
	})
	require.NoError(t, err)
	require.Len(t, obj.Siblings, 2)
}

func TestEmptyStoredActorIsCorrupt(t *testing.T) {
	s := openTest(t)
	require.NoError(t, s.db.Set(actorKey(5), nil, nil))
	_, err := s.Actor(5)
	require.ErrorIs(t, err, ErrCorrupt)
}
