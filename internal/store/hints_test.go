package store

import (
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
)

func ref(owner string, p uint32, key string) HintRef {
	return HintRef{Owner: owner, Partition: p, Bucket: "b", Key: []byte(key)}
}

// hint stores a replicated object under a hint, as a fallback does.
func hint(t testing.TB, s *Store, r HintRef, obj dvv.Object, now int64) {
	t.Helper()
	_, err := s.ModifyHint(r, true, now, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return dvv.Sync(cur, obj), true, nil
	})
	require.NoError(t, err)
}

func pendingOf(t testing.TB, s *Store, owner string) []Hint {
	t.Helper()
	var out []Hint
	require.NoError(t, s.ScanHints(owner, nil, func(h Hint) (bool, error) {
		if !h.Delivered {
			out = append(out, h)
		}
		return true, nil
	}))
	return out
}

func write(actor string, n int) dvv.Object {
	var o dvv.Object
	for i := range n {
		o = mustUpdate(o.Update(o.VV, actor, []byte{byte(i)}, false, int64(i)))
	}
	return o
}

func TestHintsAreKeptApartPerOwner(t *testing.T) {
	s := openTest(t)
	hint(t, s, ref("n2", 7, "k1"), write("a", 1), 100)
	hint(t, s, ref("n2", 3, "k2"), write("a", 1), 200)
	hint(t, s, ref("n3", 7, "k1"), write("b", 1), 300)

	obj, found, err := s.GetHint(ref("n2", 7, "k1"))
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, obj.Siblings, 1)
	_, found, err = s.Get(7, "b", []byte("k1"))
	require.NoError(t, err)
	require.False(t, found, "a hint is not this node's own data")

	got := pendingOf(t, s, "n2")
	require.Len(t, got, 2)
	require.Equal(t, uint32(3), got[0].Partition, "queue order is partition, then key")
	require.Equal(t, "k1", string(got[1].Key))
	require.Len(t, pendingOf(t, s, "n3"), 1)

	stats := s.HintStats()
	require.Equal(t, 2, stats["n2"].Pending)
	require.Equal(t, int64(100), stats["n2"].BacklogSince)
	require.Equal(t, 1, stats["n3"].Pending)
	require.Positive(t, stats["n2"].Bytes)
}

func TestRepeatedWritesToOneKeyAreOneHint(t *testing.T) {
	s := openTest(t)
	r := ref("n2", 1, "k")
	hint(t, s, r, write("a", 1), 100)
	hint(t, s, r, write("a", 2), 200)
	hint(t, s, r, write("b", 1), 300)
	got := pendingOf(t, s, "n2")
	require.Len(t, got, 1)
	require.Len(t, got[0].Object.Siblings, 2, "merged by sync: a's newer write and b's concurrent one")
	require.Equal(t, int64(100), got[0].Since, "pending since the first write")
	require.Equal(t, 1, s.HintStats()["n2"].Pending)
}

func TestDeliveryMarksOnlyWhatTheOwnerSaw(t *testing.T) {
	s := openTest(t)
	hint(t, s, ref("n2", 1, "k1"), write("a", 1), 100)
	hint(t, s, ref("n2", 1, "k2"), write("a", 1), 100)
	batch := pendingOf(t, s, "n2")
	// k2 is written again after the batch was read: the owner has not seen
	// the new write, so it stays pending.
	hint(t, s, ref("n2", 1, "k2"), write("a", 2), 150)
	n, err := s.MarkDelivered("n2", batch, batch[1].Pos)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	left := pendingOf(t, s, "n2")
	require.Len(t, left, 1)
	require.Equal(t, "k2", string(left[0].Key))
	st := s.HintStats()["n2"]
	require.Equal(t, 1, st.Pending)
	require.Equal(t, 1, st.Delivered)

	cur, err := s.HintCursor("n2")
	require.NoError(t, err)
	require.Equal(t, batch[1].Pos, cur)
	var after []string
	require.NoError(t, s.ScanHints("n2", batch[0].Pos, func(h Hint) (bool, error) {
		after = append(after, string(h.Key))
		return true, nil
	}))
	require.Equal(t, []string{"k2"}, after, "a scan resumes strictly after the cursor")

	// Marking twice changes nothing.
	n, err = s.MarkDelivered("n2", batch[:1], nil)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = s.MarkDelivered("n3", batch, nil)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
}

func TestEpisodeClosesOnlyWhenNothingIsPendingAndRetiresTheActor(t *testing.T) {
	s := openTest(t)
	var firstActor string
	_, err := s.MintHint(ref("n2", 4, "k"), true, 1, func(cur dvv.Object, _ bool, actor string) (dvv.Object, bool, error) {
		firstActor = actor
		return mustUpdate(cur.Update(nil, actor, []byte("v"), false, 1)), true, nil
	})
	require.NoError(t, err)
	hint(t, s, ref("n3", 4, "other"), write("x", 1), 2)
	hint(t, s, ref("n3", 5, "elsewhere"), write("x", 1), 2)

	closed, err := s.CloseHintEpisode(4)
	require.NoError(t, err)
	require.False(t, closed, "hints of partition 4 are still pending")

	for _, owner := range []string{"n2", "n3"} {
		var batch []Hint
		require.NoError(t, s.ScanHints(owner, nil, func(h Hint) (bool, error) {
			if h.Partition == 4 {
				batch = append(batch, h)
			}
			return true, nil
		}))
		_, err := s.MarkDelivered(owner, batch, nil)
		require.NoError(t, err)
	}
	closed, err = s.CloseHintEpisode(4)
	require.NoError(t, err)
	require.True(t, closed)
	_, found, err := s.GetHint(ref("n2", 4, "k"))
	require.NoError(t, err)
	require.False(t, found, "a closed episode's hints are gone")
	require.Len(t, pendingOf(t, s, "n3"), 1, "other partitions keep theirs")
	_, inStats := s.HintStats()["n2"]
	require.False(t, inStats)

	// The next write to the partition mints under a new actor: the old
	// one's dots are gone from here, so it must never mint again.
	_, err = s.MintHint(ref("n2", 4, "k"), true, 3, func(cur dvv.Object, _ bool, actor string) (dvv.Object, bool, error) {
		require.NotEqual(t, firstActor, actor)
		return mustUpdate(cur.Update(nil, actor, []byte("v2"), false, 3)), true, nil
	})
	require.NoError(t, err)
}

func TestHintsSurviveReopenAndUncleanStartRetiresHintActors(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	var actor string
	_, err := s.MintHint(ref("n2", 1, "k"), true, 10, func(cur dvv.Object, _ bool, a string) (dvv.Object, bool, error) {
		actor = a
		return mustUpdate(cur.Update(nil, a, []byte("v"), false, 1)), true, nil
	})
	require.NoError(t, err)
	hint(t, s, ref("n2", 1, "k2"), write("z", 1), 20)
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	st := s.HintStats()["n2"]
	require.Equal(t, 2, st.Pending, "the account is rebuilt at open")
	require.Equal(t, int64(10), st.BacklogSince)
	_, err = s.MintHint(ref("n2", 1, "k"), true, 30, func(cur dvv.Object, _ bool, a string) (dvv.Object, bool, error) {
		require.Equal(t, actor, a, "a clean restart keeps the episode's actor")
		return cur, false, nil
	})
	require.NoError(t, err)
	// Simulate a crash: close pebble without the clean-shutdown marker.
	require.NoError(t, s.db.Set(runningKey, nil, pebble.Sync))
	require.NoError(t, s.db.Close())
	s.closeOnce.Do(func() {})

	s = openAt(t, dir)
	require.True(t, s.Stats().UncleanStart)
	_, err = s.MintHint(ref("n2", 1, "k"), true, 40, func(cur dvv.Object, _ bool, a string) (dvv.Object, bool, error) {
		require.NotEqual(t, actor, a, "after a crash the hint actor is retired")
		return cur, false, nil
	})
	require.NoError(t, err)
	require.Len(t, pendingOf(t, s, "n2"), 2, "the hints themselves survive")
}

func TestCorruptHintsAreErrors(t *testing.T) {
	s := openTest(t)
	r := ref("n2", 1, "k")
	k, err := hintKey(r)
	require.NoError(t, err)
	require.NoError(t, s.db.Set(k, []byte{hintFormatV1, 0xdb, 0xff, 0xff, 0xff, 0xff}, pebble.Sync))
	_, _, err = s.GetHint(r)
	require.ErrorIs(t, err, ErrCorrupt)
	err = s.ScanHints("n2", nil, func(Hint) (bool, error) { return true, nil })
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = decodeHintKey([]byte{prefixHint, hintRecord, 0xff})
	require.ErrorIs(t, err, ErrCorrupt)
	_, _, err = s.GetHint(HintRef{Owner: "", Bucket: "b", Key: []byte("k")})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
}

func TestHintKeysDecodeAndAreUnambiguous(t *testing.T) {
	for _, r := range []HintRef{ref("n2", 0, "k"), ref("n22", 0xffffffff, ""), {Owner: "o", Partition: 9, Bucket: "ab", Key: []byte("c")},
		{Owner: "o", Partition: 9, Bucket: "a", Key: []byte("bc")}} {
		k, err := hintKey(r)
		require.NoError(t, err)
		back, err := decodeHintKey(k)
		require.NoError(t, err)
		require.Equal(t, r.Owner, back.Owner)
		require.Equal(t, r.Partition, back.Partition)
		require.Equal(t, r.Bucket, back.Bucket)
		require.Equal(t, string(r.Key), string(back.Key))
	}
}
