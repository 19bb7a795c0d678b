package aae

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

// pruneLink is n1's connection to n2 for pruning: replica gets answered
// from n2's store (as node's handler does), hint counts from a counter the
// test moves, and pushes by n2's ServePush.
type pruneLink struct {
	t     *testing.T
	to    *AAE
	store *store.Store

	mu          sync.Mutex
	hintsStored uint64
	keeps       []wire.HintOwner // the hints n2 keeps
	// writeHintOnAsk makes n2 write a hint just after answering this
	// many hint counts, as a hint written while a pass settles.
	writeHintOnAsk int
	asks           int
}

func (l *pruneLink) Call(ctx context.Context, _ string, typ wire.Type, req, resp any) error {
	require.NoError(l.t, sendable(typ, req), "the peer reads every request")
	switch typ {
	case wire.TypeHints:
		l.mu.Lock()
		defer l.mu.Unlock()
		*resp.(*wire.HintsResp) = wire.HintsResp{Node: "n2", Owners: l.keeps, Stored: l.hintsStored, Started: 1}
		l.asks++
		if l.asks == l.writeHintOnAsk {
			l.hintsStored++
		}
		return nil
	case wire.TypeReplicaGet:
		r := req.(wire.ReplicaGetReq)
		obj, found, err := l.store.Get(r.Partition, r.Bucket, r.Key)
		if err != nil {
			return err
		}
		*resp.(*wire.ReplicaGetResp) = wire.ReplicaGetResp{Found: found, Object: obj}
		return nil
	case wire.TypeAAEPush:
		out, err := l.to.ServePush(ctx, transport.Peer{Node: "n1"}, req.(wire.AAEPushReq))
		if err != nil {
			return err
		}
		*resp.(*wire.AAEPushResp) = out
		return nil
	}
	return fmt.Errorf("unexpected %v", typ)
}

// prunePair is two replicas of every partition, n1 and n2, each with a
// real store and trees; n1 retired the actor "n1.old".
type prunePair struct {
	r      *ring.Ring
	s1, s2 *store.Store
	n1, n2 *AAE
	link   *pruneLink
}

func newPrunePair(t *testing.T) *prunePair {
	r, err := ring.New(testPartitions, []string{"n1", "n2"})
	require.NoError(t, err)
	s1, t1 := openTreed(t, "n1")
	s2, t2 := openTreed(t, "n2")
	cfg := DefaultConfig()
	cfg.PruneSettle = time.Second
	check := func(uint32, string, []byte) error { return nil }
	n2, err := New(cfg, Deps{Name: "n2", Store: s2, Peers: noPeers{}, Members: pair{r}, Trees: t2, CheckKey: check})
	require.NoError(t, err)
	l := &pruneLink{t: t, to: n2, store: s2}
	n1, err := New(cfg, Deps{Name: "n1", Store: s1, Peers: l, Members: pair{r}, Trees: t1, CheckKey: check})
	require.NoError(t, err)
	n1.refresh()
	return &prunePair{r: r, s1: s1, s2: s2, n1: n1, n2: n2, link: l}
}

// put writes obj under a fresh key of partition p in both stores (or only
// in s when given) and returns the key.
func (pp *prunePair) put(t *testing.T, p uint32, prefix string, obj dvv.Object, stores ...*store.Store) []byte {
	if len(stores) == 0 {
		stores = []*store.Store{pp.s1, pp.s2}
	}
	var key []byte
	for _, s := range stores {
		key = keysInPartition(t, s, pp.r, p, prefix, 1, obj)[0].Key
	}
	return key
}

func (pp *prunePair) get(t *testing.T, s *store.Store, p uint32, key []byte) dvv.Object {
	obj, found, err := s.Get(p, "b", key)
	require.NoError(t, err)
	require.True(t, found)
	return obj
}

// objects: a key n1.old wrote three times and n1.new then replaced; one
// whose sibling n1.old still names; one the replicas disagree on.
var (
	replaced = dvv.Object{Siblings: []dvv.Sibling{{Dot: dvv.Dot{Actor: "n1.new", Counter: 1}, Value: []byte("v")}},
		VV: dvv.VV{"n1.old": 3, "n1.new": 1, "n2.x": 2}}
	named = dvv.Object{Siblings: []dvv.Sibling{{Dot: dvv.Dot{Actor: "n1.old", Counter: 2}, Value: []byte("v")}},
		VV: dvv.VV{"n1.old": 2}}
	stale = dvv.Object{Siblings: []dvv.Sibling{{Dot: dvv.Dot{Actor: "n1.old", Counter: 1}, Value: []byte("old")}},
		VV: dvv.VV{"n1.old": 1}}
)

// TestPruneDropsRetiredActorsWhereEveryCopyAgrees: a pass prunes n1's
// retired actor from the key whose copies agree, on both replicas alike;
// leaves the entry a sibling names; and leaves alone the key whose copies
// differ (n2 still holds the replaced write n1.old:1 there, which the
// vector entry keeps covered).
func TestPruneDropsRetiredActorsWhereEveryCopyAgrees(t *testing.T) {
	pp := newPrunePair(t)
	const p = 3
	require.NoError(t, pp.s1.RetireActors(p, []string{"n1.old"}))
	kReplaced := pp.put(t, p, "r", replaced)
	kNamed := pp.put(t, p, "n", named)
	kDiffer := pp.put(t, p, "d", replaced, pp.s1)
	pp.put(t, p, "d", stale, pp.s2)

	pp.n1.prunePass(t.Context(), 0, map[uint32]string{})

	want := dvv.Object{Siblings: replaced.Siblings, VV: dvv.VV{"n1.new": 1, "n2.x": 2}}
	for _, s := range []*store.Store{pp.s1, pp.s2} {
		got := pp.get(t, s, p, kReplaced)
		require.True(t, got.Equal(want), "%v", got)
		require.True(t, pp.get(t, s, p, kNamed).Equal(named))
	}
	require.True(t, pp.get(t, pp.s1, p, kDiffer).Equal(replaced))
	require.True(t, pp.get(t, pp.s2, p, kDiffer).Equal(stale))
	require.True(t, pp.s2.IsRetired("n1.old"), "n2 learned the actor is retired")
	require.EqualValues(t, 1, pp.n1.stats.prunedEntries.Load())
	require.EqualValues(t, 1, pp.n2.stats.prunedEntries.Load())
	root1, _ := pp.n1.trees.root(p)
	root2, _ := pp.n2.trees.root(p)
	require.NotEqual(t, root1, root2, "the differing key still differs")
}

// TestPruneWaitsWhileHintsAreWritten: a hint written anywhere while the
// pass settles may hold a replaced write; the pass prunes nothing.
func TestPruneWaitsWhileHintsAreWritten(t *testing.T) {
	pp := newPrunePair(t)
	const p = 3
	require.NoError(t, pp.s1.RetireActors(p, []string{"n1.old"}))
	k := pp.put(t, p, "r", replaced)
	pp.link.writeHintOnAsk = 1
	pp.n1.prunePass(t.Context(), 0, map[uint32]string{})
	for _, s := range []*store.Store{pp.s1, pp.s2} {
		require.True(t, pp.get(t, s, p, k).Equal(replaced))
	}
	require.Zero(t, pp.n1.stats.prunedEntries.Load())
}

// TestPruneWaitsWhileAHintIsKept: a hint kept anywhere may hold a
// replaced write that a replica get's merge with the node's data hides.
func TestPruneWaitsWhileAHintIsKept(t *testing.T) {
	pp := newPrunePair(t)
	const p = 3
	require.NoError(t, pp.s1.RetireActors(p, []string{"n1.old"}))
	k := pp.put(t, p, "r", replaced)
	pp.link.keeps = []wire.HintOwner{{Owner: "n3", Delivered: 1}}
	pp.n1.prunePass(t.Context(), 0, map[uint32]string{})
	require.True(t, pp.get(t, pp.s1, p, k).Equal(replaced))
	require.Zero(t, pp.n1.stats.prunedEntries.Load())
}

// TestServePruneChecksTheActorsAndTheCopy: a peer prunes only actors it
// retired (named after it), and a copy that no longer equals the one it
// looked at is left alone.
func TestServePruneChecksTheActorsAndTheCopy(t *testing.T) {
	pp := newPrunePair(t)
	const p = 3
	k := pp.put(t, p, "r", replaced)
	push := func(from string, obj dvv.Object, actors ...string) (wire.AAEPushResp, error) {
		return pp.n2.ServePush(t.Context(), transport.Peer{Node: from},
			wire.AAEPushReq{Partition: p, Objects: []wire.AAEObject{{Bucket: "b", Key: k, Object: obj}}, Prune: actors})
	}
	_, err := push("n3", replaced, "n1.old")
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.False(t, pp.s2.IsRetired("n1.old"))

	other := dvv.Object{Siblings: replaced.Siblings, VV: dvv.VV{"n1.old": 4, "n1.new": 1, "n2.x": 2}}
	resp, err := push("n1", other, "n1.old")
	require.NoError(t, err)
	require.Zero(t, resp.Applied, "the copy differs from the one looked at")
	require.True(t, pp.get(t, pp.s2, p, k).Equal(replaced))

	resp, err = push("n1", replaced, "n1.old", "n1.new")
	require.NoError(t, err)
	require.Equal(t, 1, resp.Applied)
	require.True(t, pp.get(t, pp.s2, p, k).VV.Equal(dvv.VV{"n1.new": 1, "n2.x": 2}), "the entry a sibling names stays")
}
