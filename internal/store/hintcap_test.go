package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
)

// storedHintBytes is what the account should say, from a scan of the hint
// keyspace: every record's key and value.
func storedHintBytes(t testing.TB, s *Store, owner string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.ScanHints(owner, nil, func(h Hint) (bool, error) {
		n += int64(len(h.Pos) + h.Size)
		return true, nil
	}))
	return n
}

func requireAccountMatches(t testing.TB, s *Store, owners ...string) {
	t.Helper()
	stats := s.HintStats()
	var total int64
	for _, o := range owners {
		want := storedHintBytes(t, s, o)
		require.Equal(t, want, stats[o].Bytes, "bytes of %s's hints", o)
		total += want
	}
	s.hints.mu.Lock()
	defer s.hints.mu.Unlock()
	require.Equal(t, total, s.hints.total, "bytes of every owner's hints")
}

// counts leaves out BacklogSince, which a rebuild sets from the first
// pending hint it scans rather than the first one written.
func counts(stats map[string]HintOwnerStats) map[string]HintOwnerStats {
	out := map[string]HintOwnerStats{}
	for o, st := range stats {
		st.BacklogSince = 0
		out[o] = st
	}
	return out
}

func openCapped(t testing.TB, dir string, perOwner, total int64) *Store {
	t.Helper()
	o := testOptions(dir)
	o.MaxHintBytesPerOwner, o.MaxHintBytes = perOwner, total
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func tryHint(s *Store, r HintRef, obj dvv.Object) error {
	_, err := s.ModifyHint(r, true, 1, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		if found && cur.Descends(obj) {
			return cur, false, nil
		}
		return dvv.Sync(cur, obj), true, nil
	})
	return err
}

// The account of hint bytes follows every write, merge, delivery and
// episode close, and is rebuilt to the same figures at a clean reopen and
// after a crash.
func TestHintBytesAccountFollowsEveryChange(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	hint(t, s, ref("n2", 1, "k1"), write("a", 1), 1)
	requireAccountMatches(t, s, "n2")
	hint(t, s, ref("n2", 1, "k1"), write("b", 1), 2) // a merge: one more sibling
	hint(t, s, ref("n2", 2, "k2"), write("a", 1), 3)
	hint(t, s, ref("n3", 2, "k2"), write("c", 1), 3)
	requireAccountMatches(t, s, "n2", "n3")
	_, err := s.MintHint(ref("n3", 1, "k3"), true, 4, func(cur dvv.Object, _ bool, a string) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(nil, a, []byte("minted"), false, 4)), true, nil
	})
	require.NoError(t, err)
	requireAccountMatches(t, s, "n2", "n3")

	// Delivery of partition 1's hints, then its episode's close.
	for _, owner := range []string{"n2", "n3"} {
		var batch []Hint
		require.NoError(t, s.ScanHints(owner, nil, func(h Hint) (bool, error) {
			if h.Partition == 1 {
				batch = append(batch, h)
			}
			return true, nil
		}))
		_, err := s.MarkDelivered(owner, batch, nil)
		require.NoError(t, err)
	}
	requireAccountMatches(t, s, "n2", "n3")
	closed, err := s.CloseHintEpisode(1)
	require.NoError(t, err)
	require.True(t, closed)
	requireAccountMatches(t, s, "n2", "n3")
	before := s.HintStats()
	require.Positive(t, before["n2"].Bytes)

	require.NoError(t, s.Close())
	s = openAt(t, dir)
	require.Equal(t, counts(before), counts(s.HintStats()), "a clean reopen rebuilds the same account")
	requireAccountMatches(t, s, "n2", "n3")

	hint(t, s, ref("n2", 3, "k4"), write("a", 3), 5)
	after := s.HintStats()
	// A crash: pebble closed without the clean-shutdown marker.
	require.NoError(t, s.db.Set(runningKey, nil, pebble.Sync))
	require.NoError(t, s.db.Close())
	s.closeOnce.Do(func() {})
	s = openAt(t, dir)
	require.True(t, s.Stats().UncleanStart)
	require.Equal(t, counts(after), counts(s.HintStats()), "the account is rebuilt from what is on disk")
	requireAccountMatches(t, s, "n2", "n3")
}

// At an owner's cap a hint write that would grow its hints is refused with
// an overloaded error and changes nothing; writes that do not grow them,
// hints for other owners, and the node's own data still pass.
func TestHintCapPerOwnerRefusesGrowthOnly(t *testing.T) {
	s := openCapped(t, t.TempDir(), 300, 0)
	obj := write("a", 1)
	var kept int
	var refused error
	for i := range 50 {
		err := tryHint(s, ref("n2", 1, fmt.Sprintf("key-%02d", i)), obj)
		if err != nil {
			refused = err
			break
		}
		kept++
	}
	require.Error(t, refused, "50 hints do not fit in 300 bytes")
	require.Positive(t, kept)
	require.ErrorIs(t, refused, cairn.ErrOverloaded)
	var capErr *HintCapError
	require.True(t, errors.As(refused, &capErr))
	require.Equal(t, "n2", capErr.Owner)
	require.False(t, capErr.NodeWide)
	require.Contains(t, refused.Error(), "max_hint_bytes_per_owner")

	st := s.HintStats()["n2"]
	require.Equal(t, kept, st.Pending, "the refused write left nothing")
	require.LessOrEqual(t, st.Bytes, int64(300))
	requireAccountMatches(t, s, "n2")
	_, found, err := s.GetHint(ref("n2", 1, fmt.Sprintf("key-%02d", kept)))
	require.NoError(t, err)
	require.False(t, found)

	// A write the hint already holds, or one that does not grow it, passes.
	require.NoError(t, tryHint(s, ref("n2", 1, "key-00"), obj))
	// One that grows an existing hint (a concurrent sibling) does not.
	err = tryHint(s, ref("n2", 1, "key-00"), write("b", 1))
	require.ErrorIs(t, err, cairn.ErrOverloaded)
	held, _, err := s.GetHint(ref("n2", 1, "key-00"))
	require.NoError(t, err)
	require.True(t, held.Equal(obj), "the refused merge changed nothing")

	// Other owners and the node's own data are not affected.
	require.NoError(t, tryHint(s, ref("n3", 1, "key-00"), obj))
	put(t, s, 1, "b", []byte("own"), "v")
	requireAccountMatches(t, s, "n2", "n3")
}

func TestHintCapNodeWide(t *testing.T) {
	s := openCapped(t, t.TempDir(), 0, 400)
	obj := write("a", 1)
	var err error
	for i := 0; err == nil && i < 100; i++ {
		owner := fmt.Sprintf("n%d", 2+i%3)
		err = tryHint(s, ref(owner, 1, fmt.Sprintf("k%02d", i)), obj)
	}
	require.ErrorIs(t, err, cairn.ErrOverloaded)
	var capErr *HintCapError
	require.True(t, errors.As(err, &capErr))
	require.True(t, capErr.NodeWide)
	require.Contains(t, err.Error(), "max_hint_bytes")
	requireAccountMatches(t, s, "n2", "n3", "n4")
	s.hints.mu.Lock()
	defer s.hints.mu.Unlock()
	require.LessOrEqual(t, s.hints.total, int64(400))
}

// Concurrent writers of different keys for one owner never pass the cap
// together: the check and the count are one step.
func TestHintCapHoldsUnderConcurrentWriters(t *testing.T) {
	const capBytes = 2000
	s := openCapped(t, t.TempDir(), capBytes, 0)
	obj := write("a", 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	refusals := 0
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				err := tryHint(s, ref("n2", uint32(w), fmt.Sprintf("w%d-%02d", w, i)), obj)
				if err != nil {
					if !errors.Is(err, cairn.ErrOverloaded) {
						t.Errorf("write: %v", err)
					}
					mu.Lock()
					refusals++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Positive(t, refusals)
	require.LessOrEqual(t, storedHintBytes(t, s, "n2"), int64(capBytes))
	requireAccountMatches(t, s, "n2")
}

// A cap lowered below what a node already keeps (a restart with a smaller
// setting) refuses growth but drops nothing, and delivery still frees it.
func TestHintCapLoweredKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	for i := range 10 {
		hint(t, s, ref("n2", 1, fmt.Sprintf("k%d", i)), write("a", 1), 1)
	}
	require.NoError(t, s.Close())
	s = openCapped(t, dir, 100, 0)
	require.Equal(t, 10, s.HintStats()["n2"].Pending)
	require.ErrorIs(t, tryHint(s, ref("n2", 1, "new"), write("a", 1)), cairn.ErrOverloaded)
	require.NoError(t, tryHint(s, ref("n2", 1, "k0"), write("a", 1)), "a write the hint holds passes")
	batch := pendingOf(t, s, "n2")
	_, err := s.MarkDelivered("n2", batch, nil)
	require.NoError(t, err)
	closed, err := s.CloseHintEpisode(1)
	require.NoError(t, err)
	require.True(t, closed)
	require.NoError(t, tryHint(s, ref("n2", 1, "new"), write("a", 1)), "the cap is free once the hints are delivered")
}

func TestHintCapOptionsAreValidated(t *testing.T) {
	o := testOptions(t.TempDir())
	o.MaxHintBytesPerOwner = -1
	_, err := Open(o)
	require.ErrorContains(t, err, "MaxHintBytesPerOwner")
}
