package aae

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

// pair is the membership of a two-node ring, both up.
type pair struct{ r *ring.Ring }

func (m pair) Ring() *ring.Ring               { return m.r }
func (pair) ReplicationFactor(*ring.Ring) int { return 2 }
func (pair) Alive(string) bool                { return true }

// link is the connection from one node's exchange to its peer's Serve
// methods (real stores and trees on both sides). It checks that every
// request and answer is a readable frame, and records the batches: the
// size of every push, and the objects fetched whose merges go back (keys
// named "d...") but are not pushed back yet, at their most.
type link struct {
	t    *testing.T
	from string
	to   *AAE

	mu          sync.Mutex
	pushes      []int
	pushBytes   []int
	outstanding int
	peak        int
}

func (l *link) Call(ctx context.Context, _ string, typ wire.Type, req, resp any) error {
	require.NoError(l.t, sendable(typ, req), "the peer reads every request")
	peer := transport.Peer{Node: l.from}
	var (
		out any
		err error
	)
	switch typ {
	case wire.TypeAAEQuery:
		out, err = l.to.ServeQuery(ctx, peer, req.(wire.AAEQueryReq))
	case wire.TypeAAEFetch:
		var r wire.AAEFetchResp
		r, err = l.to.ServeFetch(ctx, peer, req.(wire.AAEFetchReq))
		l.mu.Lock()
		for _, o := range r.Objects {
			if bytes.HasPrefix(o.Key, []byte("d")) { // merges that go back
				l.outstanding++
			}
		}
		l.peak = max(l.peak, l.outstanding)
		l.mu.Unlock()
		out = r
	case wire.TypeAAEPush:
		objs := req.(wire.AAEPushReq).Objects
		size := 0
		for _, o := range objs {
			size += objectBytes(o.Object) + len(o.Bucket) + len(o.Key)
		}
		l.mu.Lock()
		l.pushes = append(l.pushes, len(objs))
		l.pushBytes = append(l.pushBytes, size)
		for _, o := range objs {
			if bytes.HasPrefix(o.Key, []byte("d")) {
				l.outstanding--
			}
		}
		l.mu.Unlock()
		out, err = l.to.ServePush(ctx, peer, req.(wire.AAEPushReq))
	default:
		return fmt.Errorf("unexpected %v", typ)
	}
	if err != nil || resp == nil {
		return err
	}
	require.NoError(l.t, sendable(typ+1, out), "the initiator reads every answer")
	switch r := resp.(type) {
	case *wire.AAEAnswerResp:
		*r = out.(wire.AAEAnswerResp)
	case *wire.AAEFetchResp:
		*r = out.(wire.AAEFetchResp)
	case *wire.AAEPushResp:
		*r = out.(wire.AAEPushResp)
	}
	return nil
}

// openTreed opens an empty store with anti-entropy trees hooked.
func openTreed(t *testing.T, name string) (*store.Store, *Trees) {
	o := store.DefaultOptions(t.TempDir(), name)
	o.NoSyncWrites = true
	trees := NewTrees(testPartitions)
	trees.Hook(&o)
	s, err := store.Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, trees
}

// TestRepairStreamsInBoundedBatches: an exchange over a partition where
// 5,000 keys differ (concurrent writes on each side, whose merges go back
// to the peer), 1,000 are missing here and 1,000 there, repairs every one
// of them, and does it in bounded batches: no push holds more than
// BatchKeys objects or (alone excepted) BatchBytes bytes, and the objects
// fetched but not yet pushed back never exceed one fetch answer and one
// push batch, however many keys differ.
func TestRepairStreamsInBoundedBatches(t *testing.T) {
	r, err := ring.New(testPartitions, []string{"n1", "n2"})
	require.NoError(t, err)
	s1, t1 := openTreed(t, "n1")
	s2, t2 := openTreed(t, "n2")
	cfg := DefaultConfig()
	cfg.BatchKeys, cfg.BatchBytes = 100, 8<<10
	check := func(uint32, string, []byte) error { return nil }
	n2, err := New(cfg, Deps{Name: "n2", Store: s2, Peers: noPeers{}, Members: pair{r}, Trees: t2, CheckKey: check})
	require.NoError(t, err)
	l := &link{t: t, from: "n1", to: n2}
	n1, err := New(cfg, Deps{Name: "n1", Store: s1, Peers: l, Members: pair{r}, Trees: t1, CheckKey: check})
	require.NoError(t, err)

	const p = 5
	value := make([]byte, 40)
	here := mustUpdate(dvv.Object{}.Update(nil, "n1.a", value, false, 1))
	there := mustUpdate(dvv.Object{}.Update(nil, "n2.b", value, false, 1))
	differ := keysInPartition(t, s1, r, p, "d", 5000, here)
	keysInPartition(t, s2, r, p, "d", 5000, there)
	onlyHere := keysInPartition(t, s1, r, p, "h", 1000, here)
	onlyThere := keysInPartition(t, s2, r, p, "t", 1000, there)

	var res Result
	for range 10 { // an exchange may stop at MaxKeysPerExchange; the next goes on
		res = n1.Exchange(t.Context(), antientropy.Pair{Partition: p, Peer: "n2"})
		require.NoError(t, res.Err)
		if res.Keys() == 0 {
			break
		}
	}
	require.Zero(t, res.Keys(), "the replicas converged")

	merged := dvv.Sync(here, there)
	for _, s := range []*store.Store{s1, s2} {
		for _, kv := range differ {
			got, found, err := s.Get(p, kv.Bucket, kv.Key)
			require.NoError(t, err)
			require.True(t, found)
			require.True(t, got.Equal(merged), "both writes kept as siblings")
		}
		for _, keys := range [][]antientropy.KeyVersion{onlyHere, onlyThere} {
			for _, kv := range keys {
				_, found, err := s.Get(p, kv.Bucket, kv.Key)
				require.NoError(t, err)
				require.True(t, found)
			}
		}
	}

	require.GreaterOrEqual(t, len(l.pushes), 6000/cfg.BatchKeys, "the pushes came in batches")
	for i, n := range l.pushes {
		require.LessOrEqual(t, n, cfg.BatchKeys, "push %d", i)
		if n > 1 {
			require.LessOrEqual(t, l.pushBytes[i], cfg.BatchBytes, "push %d", i)
		}
	}
	require.LessOrEqual(t, l.peak, 2*cfg.BatchKeys,
		"objects fetched and not yet pushed back: at most one fetch answer and one push batch")
}
