package node

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestReplicaBatchAnswersEachItem: a batch whose second item breaks the
// dot rules and whose fourth names a partition the key is not in has
// those two refused, each with its own error, and the others applied;
// an item for a key the batch wrote already merges with that write.
func TestReplicaBatchAnswersEachItem(t *testing.T) {
	tc := startCluster(t, 1, func(c *Config) { c.VerifyPeerAddress = false })
	n := tc.nodes["n1"]
	cfg := transport.DefaultConfig()
	cfg.Cluster, cfg.Node = n.cfg.Cluster, "p1"
	pool := transport.NewPool(cfg)
	t.Cleanup(func() { require.NoError(t, pool.Close()) })

	a, b, c := []byte("a"), []byte("b"), []byte("c")
	pa, pb, pc := n.ring().KeyPartition("b", a), n.ring().KeyPartition("b", b), n.ring().KeyPartition("b", c)
	first := mustUpdate(dvv.Object{}.Update(nil, "p1.a", []byte("first"), false, 1))
	second := mustUpdate(dvv.Object{}.Update(nil, "p1.b", []byte("second"), false, 2))
	broken := dvv.Object{Siblings: []dvv.Sibling{{Dot: dvv.Dot{Actor: "p1.a", Counter: 5}, Value: []byte("bad")}}, VV: dvv.VV{"p1.a": 4}}
	req := wire.ReplicaPutBatchReq{Items: []wire.ReplicaPutReq{
		{Partition: pa, Bucket: "b", Key: a, Object: first, Sync: true},
		{Partition: pb, Bucket: "b", Key: b, Object: broken, Sync: true},
		{Partition: pa, Bucket: "b", Key: a, Object: second, Sync: true},
		{Partition: pc + 1, Bucket: "b", Key: c, Object: first, Sync: true},
		{Partition: pc, Bucket: "b", Key: c, Object: second, Sync: true},
		{Partition: pa, Bucket: "b", Key: a, Object: first, Sync: true, For: "n9"}, // a fallback's hint
	}}
	var resp wire.ReplicaPutBatchResp
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, pool.Call(ctx, n.Addr(), wire.TypeReplicaPutBatch, req, &resp))
	require.Len(t, resp.Items, 6)
	for _, i := range []int{0, 2, 4, 5} {
		require.Nil(t, resp.Items[i].Err, "item %d", i)
		require.True(t, resp.Items[i].Durable, "item %d", i)
	}
	require.NotNil(t, resp.Items[1].Err)
	require.ErrorIs(t, resp.Items[1].Err.Err(), cairn.ErrProtocol)
	require.ErrorContains(t, resp.Items[1].Err.Err(), "breaks the dot rules")
	require.NotNil(t, resp.Items[3].Err)
	require.ErrorIs(t, resp.Items[3].Err.Err(), cairn.ErrInvalidArgument)
	require.False(t, resp.Items[1].Durable || resp.Items[3].Durable)

	got, found, err := n.store.Get(pa, "b", a)
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, got.Siblings, 2, "both writes of a are kept, as siblings")
	_, found, err = n.store.Get(pb, "b", b)
	require.NoError(t, err)
	require.False(t, found, "the refused item wrote nothing")
	got, found, err = n.store.Get(pc, "b", c)
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, got.Siblings, 1)
	require.Equal(t, "second", string(got.Siblings[0].Value))

	hint, found, err := n.store.GetHint(store.HintRef{Owner: "n9", Partition: pa, Bucket: "b", Key: a})
	require.NoError(t, err)
	require.True(t, found, "the hinted item is kept as a hint for n9")
	require.Equal(t, "first", string(hint.Siblings[0].Value))

	// A client (no node name in its hello) is refused the whole batch.
	err = rawClientCall(t, n.Addr(), wire.TypeReplicaPutBatch, req, &resp)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
}

// stallingPeer is a real server on 127.0.0.1 that answers single replica
// puts once released, and holds every batch until its connection ends.
type stallingPeer struct {
	srv     *transport.Server
	addr    string
	release chan struct{}
	singles atomic.Int32
	batches chan int // the size of each batch that arrives
	done    chan struct{}
}

func (p *stallingPeer) Handle(ctx context.Context, _ transport.Peer, t wire.Type, body []byte) (wire.Type, any, error) {
	switch t {
	case wire.TypeReplicaPut:
		p.singles.Add(1)
		select {
		case <-p.release:
			return t + 1, wire.ReplicaPutResp{Durable: true}, nil
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	case wire.TypeReplicaPutBatch:
		var req wire.ReplicaPutBatchReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		p.batches <- len(req.Items)
		<-ctx.Done()
		return 0, nil, ctx.Err()
	}
	return 0, nil, cairn.InvalidArgument("not served here")
}

func startStallingPeer(t *testing.T) *stallingPeer {
	p := &stallingPeer{release: make(chan struct{}), batches: make(chan int, 16), done: make(chan struct{})}
	p.srv = transport.NewServer(transport.DefaultConfig(), p)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p
}

// kill cuts every connection at once, as a peer that dies does.
func (p *stallingPeer) kill() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.srv.Shutdown(ctx)
	<-p.done
}

// batcherTo returns a batcher whose calls go over a real pool to addr, and
// the pool.
func batcherTo(addr string) (*replicaBatcher, *transport.Pool) {
	cfg := transport.DefaultConfig()
	cfg.Node = "n1"
	pool := transport.NewPool(cfg)
	call := func(ctx context.Context, _ string, t wire.Type, req, resp any) error {
		return pool.Call(ctx, addr, t, req, resp)
	}
	return newReplicaBatcher(call, cfg.MaxFrame), pool
}

// fillBatch makes the batcher hold a batch of k puts in flight to p: the
// first puts go alone and stall until released, the k queued behind them
// then go as one batch, which p holds. It returns the puts' results.
func fillBatch(t *testing.T, b *replicaBatcher, p *stallingPeer, k int, timeout time.Duration) <-chan error {
	results := make(chan error, maxBatchesInFlight+k)
	start := func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		go func() {
			defer cancel()
			_, err := b.put(ctx, "peer", wire.ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")})
			results <- err
		}()
	}
	for i := range maxBatchesInFlight {
		start() // one at a time, so that each goes alone
		require.Eventually(t, func() bool { return p.singles.Load() == int32(i+1) }, 5*time.Second, time.Millisecond)
	}
	// Half the queued puts wait for their answer, half take it by
	// callback, as the coordinator's are.
	for i := range k {
		if i%2 == 0 {
			start()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		var once atomic.Int32
		require.True(t, b.putAsync(ctx, "peer", wire.ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")}, func(_ bool, err error) {
			require.Equal(t, int32(1), once.Add(1), "a callback is called once")
			cancel()
			results <- err
		}))
	}
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.peers["peer"].queue) == k
	}, 5*time.Second, time.Millisecond)
	close(p.release)
	for range maxBatchesInFlight {
		require.NoError(t, <-results, "a put sent alone")
	}
	select {
	case got := <-p.batches:
		require.Equal(t, k, got, "the puts queued meanwhile go as one batch")
	case <-time.After(5 * time.Second):
		t.Fatal("no batch arrived")
	}
	return results
}

// TestReplicaBatcherPeerDiesMidBatch: when the peer dies with a batch in
// flight, every put of the batch gets an error, well within its deadline.
func TestReplicaBatcherPeerDiesMidBatch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := startStallingPeer(t)
	b, pool := batcherTo(p.addr)
	const k, timeout = 8, 20 * time.Second
	results := fillBatch(t, b, p, k, timeout)

	died := time.Now()
	p.kill()
	for range k {
		select {
		case err := <-results:
			require.ErrorIs(t, err, cairn.ErrUnavailable)
		case <-time.After(timeout / 2):
			t.Fatal("a put of the batch is still waiting")
		}
	}
	require.Less(t, time.Since(died), timeout/2)

	// Puts after the death fail at once: nothing listens any more.
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, err := b.put(ctx, "peer", wire.ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")})
	require.Error(t, err)
	require.NoError(t, ctx.Err())
	b.close()
	require.NoError(t, pool.Close())
}

// TestReplicaBatcherCloseWithBatchInFlight: closing the batcher cuts off
// the batch in flight; its puts get an error, later puts are refused as
// not delivered, and no goroutine is left behind.
func TestReplicaBatcherCloseWithBatchInFlight(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := startStallingPeer(t)
	b, pool := batcherTo(p.addr)
	const k = 5
	results := fillBatch(t, b, p, k, 20*time.Second)

	closed := make(chan struct{})
	go func() {
		b.close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("close waits for the batch in flight")
	}
	for range k {
		err := <-results
		require.Error(t, err)
		require.True(t, errors.Is(err, context.Canceled) || errors.Is(err, cairn.ErrUnavailable), "%v", err)
	}
	_, err := b.put(t.Context(), "peer", wire.ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")})
	require.ErrorIs(t, err, errBatcherClosed)
	require.False(t, b.putAsync(t.Context(), "peer", wire.ReplicaPutReq{}, func(bool, error) { t.Error("called after close") }))
	require.NoError(t, pool.Close())
	p.kill()
}

// TestReplicaBatcherAnswersExpiredPuts: a put whose deadline passes while
// it waits in the queue is not sent; its callback gets the timeout.
func TestReplicaBatcherAnswersExpiredPuts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := startStallingPeer(t)
	b, pool := batcherTo(p.addr)
	results := make(chan error, maxBatchesInFlight)
	for i := range maxBatchesInFlight {
		go func() {
			_, err := b.put(t.Context(), "peer", wire.ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")})
			results <- err
		}()
		require.Eventually(t, func() bool { return p.singles.Load() == int32(i+1) }, 5*time.Second, time.Millisecond)
	}
	// Both senders wait on a put the peer holds.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	expired := make(chan error, 1)
	require.True(t, b.putAsync(ctx, "peer", wire.ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")}, func(_ bool, err error) { expired <- err }))
	<-ctx.Done()
	p.kill() // the senders come back and find the expired put
	select {
	case err := <-expired:
		require.ErrorIs(t, err, cairn.ErrTimeout)
	case <-time.After(10 * time.Second):
		t.Fatal("the expired put was never answered")
	}
	for range maxBatchesInFlight {
		require.Error(t, <-results)
	}
	b.close()
	require.NoError(t, pool.Close())
}

// oldPeer serves single replica puts only, as a node that predates
// batches: a batch is refused as a type it does not serve.
type oldPeer struct{ singles, refused atomic.Int32 }

func (p *oldPeer) Handle(_ context.Context, _ transport.Peer, t wire.Type, _ []byte) (wire.Type, any, error) {
	if t != wire.TypeReplicaPut {
		p.refused.Add(1)
		return 0, nil, cairn.InvalidArgument("message type %v is not a request this node serves", t)
	}
	p.singles.Add(1)
	time.Sleep(5 * time.Millisecond) // long enough for puts to queue into batches
	return t + 1, wire.ReplicaPutResp{Durable: true}, nil
}

// TestReplicaBatcherFallsBackToSinglePuts: a peer that refuses batches
// (an older node, during a rolling upgrade) gets every put all the same,
// one message each.
func TestReplicaBatcherFallsBackToSinglePuts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	peer := &oldPeer{}
	srv := transport.NewServer(transport.DefaultConfig(), peer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	b, pool := batcherTo(ln.Addr().String())
	const k = 20
	results := make(chan error, k)
	for range k {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			durable, err := b.put(ctx, "peer", wire.ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")})
			if err == nil && !durable {
				err = errors.New("not durable")
			}
			results <- err
		}()
	}
	for range k {
		require.NoError(t, <-results)
	}
	require.Equal(t, int32(k), peer.singles.Load())
	require.Positive(t, peer.refused.Load(), "some puts went as a batch first")
	b.close()
	require.NoError(t, pool.Close())
	require.NoError(t, srv.Shutdown(t.Context()))
	<-served
}
