package aae

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

// servedBy calls another AAE's served side directly, as its peer: the
// drivers' own logic on both ends, without a network.
type servedBy struct{ peer *AAE }

func (s servedBy) Call(ctx context.Context, _ string, t wire.Type, req, resp any) error {
	if t != wire.TypeAAEQuery {
		return fmt.Errorf("unexpected %v", t)
	}
	ans, err := s.peer.ServeQuery(ctx, transport.Peer{Node: "n1"}, req.(wire.AAEQueryReq))
	if err == nil {
		*resp.(*wire.AAEAnswerResp) = ans
	}
	return err
}

// replica opens a store with trees kept from its first write (ready) and
// writes keys to it.
func replica(t *testing.T, name string, r *ring.Ring, keys []string) (*AAE, *store.Store) {
	t.Helper()
	o := store.DefaultOptions(t.TempDir(), name)
	o.NoSyncWrites = true
	trees := NewTrees(testPartitions)
	trees.Hook(&o)
	s, err := store.Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	// As node does: anti-entropy is built before the first write.
	a, err := New(DefaultConfig(), Deps{Name: name, Store: s, Peers: noPeers{}, Members: alone{r}, Trees: trees,
		CheckKey: func(uint32, string, []byte) error { return nil }})
	require.NoError(t, err)
	obj := mustUpdate(dvv.Object{}.Update(nil, "n1.a", []byte("v"), false, 1))
	for _, k := range keys {
		_, err := s.Modify(r.KeyPartition("b", []byte(k)), "b", []byte(k), false,
			func(dvv.Object, bool) (dvv.Object, bool, error) { return obj, true, nil })
		require.NoError(t, err)
	}
	return a, s
}

// TestTriageFindsOnlyTheDifferingPartitions: when a peer comes back, one
// roots query per 1,024 partitions finds the partitions whose trees
// differ; the others cost no exchange.
func TestTriageFindsOnlyTheDifferingPartitions(t *testing.T) {
	r, err := ring.New(testPartitions, []string{"n1"})
	require.NoError(t, err)
	var shared []string
	for i := range 500 {
		shared = append(shared, fmt.Sprintf("k%d", i))
	}
	extra := []string{"x1", "x2"}
	var want []uint32
	for _, k := range extra {
		want = append(want, r.KeyPartition("b", []byte(k)))
	}
	slices.Sort(want)
	want = slices.Compact(want)

	a, _ := replica(t, "n1", r, shared)
	b, _ := replica(t, "n2", r, append(slices.Clone(shared), extra...))
	a.d.Peers = servedBy{peer: b}
	all := make([]uint32, testPartitions)
	for i := range all {
		all[i] = uint32(i)
	}
	got, err := a.differing(t.Context(), "n2", all)
	require.NoError(t, err)
	require.Equal(t, want, got, "exactly the partitions holding the keys n1 lacks")

	// A partition whose tree the peer is still rebuilding cannot be
	// compared: it is exchanged too (the exchange rebuilds it).
	b.trees.slots[0].Store(&treeSlot{tree: b.trees.slots[1].Load().tree, ready: false})
	got, err = a.differing(t.Context(), "n2", all)
	require.NoError(t, err)
	require.Contains(t, got, uint32(0))
}

// TestRootsQueryBounds: a roots query names 1 to Q partitions, each below
// Q, and is refused otherwise before anything is read.
func TestRootsQueryBounds(t *testing.T) {
	r, err := ring.New(testPartitions, []string{"n1"})
	require.NoError(t, err)
	a, _ := replica(t, "n1", r, nil)
	peer := transport.Peer{Node: "n2"}
	for _, parts := range [][]uint32{nil, make([]uint32, testPartitions+1), {testPartitions}} {
		_, err := a.ServeQuery(t.Context(), peer, wire.AAEQueryReq{Kind: wire.AAERoots, Partitions: parts})
		require.Error(t, err, "%d partitions", len(parts))
	}
	resp, err := a.ServeQuery(t.Context(), peer, wire.AAEQueryReq{Kind: wire.AAERoots, Partitions: []uint32{3, 5}})
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 0}, resp.Roots, "partitions holding nothing have the empty tree's root")
	require.Empty(t, resp.NotReady)
}
