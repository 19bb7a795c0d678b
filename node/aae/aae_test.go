package aae

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// alone is the membership of a one-node ring: no peer to exchange with.
type alone struct{ r *ring.Ring }

func (a alone) Ring() *ring.Ring               { return a.r }
func (alone) ReplicationFactor(*ring.Ring) int { return 1 }
func (alone) Alive(string) bool                { return false }
func (noPeers) Call(context.Context, string, wire.Type, any, any) error {
	return errors.New("no peers in this test")
}

type noPeers struct{}

const testPartitions = 64

// openWithData fills a store without trees (as a run with anti-entropy
// off leaves it), then opens it again with trees hooked: every partition
// holding data must be rebuilt.
func openWithData(t *testing.T, keys int) (*store.Store, *Trees, *ring.Ring) {
	t.Helper()
	r, err := ring.New(testPartitions, []string{"n1"})
	require.NoError(t, err)
	dir := t.TempDir()
	o := store.DefaultOptions(dir, "n1")
	o.NoSyncWrites = true
	s, err := store.Open(o)
	require.NoError(t, err)
	obj := mustUpdate(dvv.Object{}.Update(nil, "n1.a", []byte("v"), false, 1))
	for i := range keys {
		k := fmt.Appendf(nil, "k%d", i)
		_, err := s.Modify(r.KeyPartition("b", k), "b", k, false, func(dvv.Object, bool) (dvv.Object, bool, error) { return obj, true, nil })
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	trees := NewTrees(testPartitions)
	trees.Hook(&o)
	s, err = store.Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, trees, r
}

// TestExchangeDoesNotWaitForTheRebuild: with the background rebuild
// crawling at one key a second, a peer's query for a partition the walk
// has not reached is answered at once from a tree rebuilt on demand, equal
// to one built from storage.
func TestExchangeDoesNotWaitForTheRebuild(t *testing.T) {
	s, trees, r := openWithData(t, 2000)
	cfg := DefaultConfig()
	cfg.RebuildKeysPerSecond = 1
	a, err := New(cfg, Deps{Name: "n1", Store: s, Peers: noPeers{}, Members: alone{r}, Trees: trees,
		CheckKey: func(uint32, string, []byte) error { return nil }})
	require.NoError(t, err)
	require.Len(t, a.rebuilding, testPartitions, "every partition holds data and has no saved tree")

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	last := a.rebuilding[len(a.rebuilding)-1]
	qctx, qcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer qcancel()
	resp, err := a.ServeQuery(qctx, transport.Peer{Node: "n2"}, wire.AAEQueryReq{Partition: last, Kind: uint8(antientropy.QueryRoot)})
	require.NoError(t, err, "answered without waiting for the walk")

	b, err := antientropy.NewBuilder(antientropy.DefaultShape())
	require.NoError(t, err)
	require.NoError(t, s.ScanPartition(last, func(bucket string, key []byte, obj dvv.Object) (bool, error) {
		b.Add(bucket, key, antientropy.Version(obj))
		return true, nil
	}))
	require.Positive(t, b.Keys())
	require.Equal(t, b.Tree().Root(), resp.Root)
	require.Equal(t, b.Keys(), resp.Keys)

	st, err := a.ServeStatus(t.Context(), transport.Peer{}, wire.AAEStatusReq{})
	require.NoError(t, err)
	require.Positive(t, st.Rebuilds)
	require.Positive(t, st.NotReady, "the walk is still crawling through the rest")
}

// TestPeersOnly: a client connection, a partition out of range and a
// node with anti-entropy off are refused before anything is read.
func TestPeersOnly(t *testing.T) {
	s, trees, r := openWithData(t, 10)
	deps := Deps{Name: "n1", Store: s, Peers: noPeers{}, Members: alone{r}, Trees: trees,
		CheckKey: func(uint32, string, []byte) error { return nil }}
	a, err := New(DefaultConfig(), deps)
	require.NoError(t, err)
	_, err = a.ServeQuery(t.Context(), transport.Peer{}, wire.AAEQueryReq{Kind: 1})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, err = a.ServeQuery(t.Context(), transport.Peer{Node: "n2"}, wire.AAEQueryReq{Partition: testPartitions, Kind: 1})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)

	off := DefaultConfig()
	off.Enabled = false
	deps.Trees = nil
	a, err = New(off, deps)
	require.NoError(t, err)
	require.False(t, a.Enabled())
	_, err = a.ServeFetch(t.Context(), transport.Peer{Node: "n2"}, wire.AAEFetchReq{Keys: []wire.AAEKeyRef{{Bucket: "b", Key: []byte("k")}}})
	require.ErrorIs(t, err, cairn.ErrUnavailable)
	a.Run(t.Context()) // returns at once

	_, err = New(DefaultConfig(), Deps{})
	require.ErrorContains(t, err, "store, peers, members and key check are required")
}

// mustUpdate takes dvv's Update in a history whose counters cannot come
// near the end of their range, so an error is a bug in the test.
func mustUpdate(o dvv.Object, err error) dvv.Object {
	if err != nil {
		panic(err)
	}
	return o
}
