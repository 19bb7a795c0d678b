package node

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func values(obj *client.Object) []string {
	var out []string
	for _, s := range obj.Siblings {
		out = append(out, string(s.Value))
	}
	return out
}

func TestSiblingsAndContextsOnOneNode(t *testing.T) {
	tc := startCluster(t, 1, nil)
	c := tc.client("n1")
	ctx := t.Context()
	b, k := "demo", []byte("greeting")

	_, err := c.Put(ctx, b, k, []byte("hello"))
	require.NoError(t, err)
	_, err = c.Put(ctx, b, k, []byte("bonjour"))
	require.NoError(t, err)
	obj, err := c.Get(ctx, b, k)
	require.NoError(t, err)
	require.True(t, obj.Found)
	require.ElementsMatch(t, []string{"hello", "bonjour"}, values(obj), "two puts without a context are two siblings")

	_, err = c.Put(ctx, b, k, []byte("hi"), client.Causal(obj.Context))
	require.NoError(t, err)
	obj, err = c.Get(ctx, b, k)
	require.NoError(t, err)
	require.Equal(t, []string{"hi"}, values(obj), "a put with the get's context replaces what it saw")

	_, err = c.Delete(ctx, b, k, client.Causal(obj.Context))
	require.NoError(t, err)
	obj, err = c.Get(ctx, b, k)
	require.NoError(t, err)
	require.False(t, obj.Found, "deleted with its context reads as not found")
	require.Empty(t, obj.Siblings)
	require.NotEmpty(t, obj.Context, "a not-found read still returns the context")

	// A put with that context supersedes the tombstone cleanly.
	_, err = c.Put(ctx, b, k, []byte("back"), client.Causal(obj.Context))
	require.NoError(t, err)
	obj, err = c.Get(ctx, b, k)
	require.NoError(t, err)
	require.Equal(t, []string{"back"}, values(obj))

	missing, err := c.Get(ctx, b, []byte("never written"))
	require.NoError(t, err)
	require.False(t, missing.Found)
}

func TestConcurrentWriteSurvivesAsSibling(t *testing.T) {
	tc := startCluster(t, 1, nil)
	c := tc.client("n1")
	ctx := t.Context()
	k := []byte("k")
	_, err := c.Put(ctx, "b", k, []byte("v1"))
	require.NoError(t, err)
	read, err := c.Get(ctx, "b", k)
	require.NoError(t, err)
	// Someone else writes after our read...
	_, err = c.Put(ctx, "b", k, []byte("concurrent"))
	require.NoError(t, err)
	// ...so our write with the older context must not erase it.
	_, err = c.Put(ctx, "b", k, []byte("v2"), client.Causal(read.Context))
	require.NoError(t, err)
	obj, err := c.Get(ctx, "b", k)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"concurrent", "v2"}, values(obj))
}

func TestBadRequestsChangeNothing(t *testing.T) {
	tc := startCluster(t, 1, func(c *Config) { c.MaxValueSize = 1000; c.MaxKeySize = 100 })
	c := tc.client("n1")
	ctx := t.Context()
	cases := map[string]func() error{
		"empty bucket": func() error { _, err := c.Put(ctx, "", []byte("k"), []byte("v")); return err },
		"empty key":    func() error { _, err := c.Put(ctx, "b", nil, []byte("v")); return err },
		"long key":     func() error { _, err := c.Put(ctx, "b", make([]byte, 101), []byte("v")); return err },
		"long value":   func() error { _, err := c.Put(ctx, "b", []byte("k"), make([]byte, 1001)); return err },
		"bad context": func() error {
			_, err := c.Put(ctx, "b", []byte("k"), []byte("v"), client.Causal([]byte{1, 0xc1}))
			return err
		},
		"w above n": func() error { _, err := c.Put(ctx, "b", []byte("k"), []byte("v"), client.W(2)); return err },
		"r above n": func() error { _, err := c.Get(ctx, "b", []byte("k"), client.R(3)); return err },
		"delete pw above n": func() error {
			_, err := c.Delete(ctx, "b", []byte("k"), client.PW(2))
			return err
		},
	}
	for name, call := range cases {
		err := call()
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, name)
	}
	obj, err := c.Get(ctx, "b", []byte("k"))
	require.NoError(t, err)
	require.False(t, obj.Found, "no bad request wrote anything")
	require.Empty(t, obj.Context)
}

func frameHeader(n uint32) []byte {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], n)
	return h[:]
}

// hostileConn connects, passes the handshake, sends payload, and returns
// the error the node answered with before closing the connection.
func hostileConn(t *testing.T, addr string, payload []byte) error {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	hello, err := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 1, wire.TypeHello, wire.Hello{Cluster: "cairn"}, 4096)
	require.NoError(t, err)
	_, err = c.Write(append(hello, payload...))
	require.NoError(t, err)
	var pre [5]byte
	_, err = io.ReadFull(c, pre[:])
	require.NoError(t, err)
	var last error
	for {
		raw, err := wire.ReadFrame(c, wire.DefaultMaxFrame)
		if err != nil {
			require.ErrorIs(t, err, io.EOF, "the node closes the connection")
			return last
		}
		f, err := wire.ParseFrame(raw)
		require.NoError(t, err)
		if f.Type == wire.TypeError {
			var e wire.ErrorResp
			require.NoError(t, wire.Decode(f.Body, &e))
			last = e.Err()
		}
	}
}

func TestHostileClientsCloseTheirOwnConnectionOnly(t *testing.T) {
	tc := startCluster(t, 1, nil)
	addr := tc.nodes["n1"].Addr()
	good := tc.client("n1")
	ctx := t.Context()
	_, err := good.Put(ctx, "b", []byte("k"), []byte("v"))
	require.NoError(t, err)

	// A well-behaved client keeps working while the attack goes on.
	stop := make(chan struct{})
	served := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				served <- nil
				return
			default:
			}
			if _, err := good.Get(ctx, "b", []byte("k")); err != nil {
				served <- err
				return
			}
		}
	}()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 50 {
		require.ErrorIs(t, hostileConn(t, addr, frameHeader(2<<30)), cairn.ErrProtocol, "2 GiB frame header")
		require.ErrorIs(t, hostileConn(t, addr, append(frameHeader(8), 0x93, 0x01, 0x0d, 0xc6, 0xff, 0xff, 0xff, 0xff)),
			cairn.ErrProtocol, "tiny frame declaring a 4 GiB binary")
		require.ErrorIs(t, hostileConn(t, addr, append(frameHeader(8), 0x93, 0x01, 0x0d, 0xdd, 0xff, 0xff, 0xff, 0xff)),
			cairn.ErrProtocol, "tiny frame declaring a 4 GiB array")
		require.ErrorIs(t, hostileConn(t, addr, []byte{0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00}), cairn.ErrProtocol, "random bytes")
	}
	runtime.ReadMemStats(&after)
	close(stop)
	wg.Wait()
	require.NoError(t, <-served, "the good client was served throughout")

	// 200 connections announcing 2 to 4 GiB each: a node that believed
	// them would have asked for hundreds of GiB. The allowance covers the
	// good client's traffic and the node's own work meanwhile.
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated during the attack: %d MiB (heap in use %d -> %d MiB)", grew>>20, before.HeapInuse>>20, after.HeapInuse>>20)
	require.Less(t, grew, uint64(256<<20), "allocations follow bytes received, not lengths announced")
	require.Less(t, after.HeapInuse, before.HeapInuse+64<<20, "heap stays flat")

	// A request of a type nobody serves is an error, not a closed
	// connection.
	err = rawClientCall(t, addr, wire.Type(999), struct{}{}, nil)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
}

func TestReplicaMessagesAreForPeersOnly(t *testing.T) {
	tc := startCluster(t, 1, nil)
	c := tc.client("n1")
	_, err := c.Put(t.Context(), "b", []byte("k"), []byte("v"))
	require.NoError(t, err)
	// Speak the protocol as a client (no node name) and ask for a replica
	// copy: refused.
	var resp wire.ReplicaGetResp
	err = rawClientCall(t, tc.nodes["n1"].Addr(), wire.TypeReplicaGet, wire.ReplicaGetReq{Partition: 0, Bucket: "b", Key: []byte("k")}, &resp)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
}

func TestRequestDeadlineIsCapped(t *testing.T) {
	tc := startCluster(t, 1, func(c *Config) { c.RequestTimeout = time.Second; c.MaxRequestTimeout = 2 * time.Second })
	n := tc.nodes["n1"]
	ctx, cancel := n.requestContext(context.Background(), 3_600_000)
	defer cancel()
	d, ok := ctx.Deadline()
	require.True(t, ok)
	require.WithinDuration(t, time.Now().Add(2*time.Second), d, time.Second)
	ctx2, cancel2 := n.requestContext(context.Background(), 0)
	defer cancel2()
	d, _ = ctx2.Deadline()
	require.WithinDuration(t, time.Now().Add(time.Second), d, time.Second)
}

func TestShutdownRefusesNewWork(t *testing.T) {
	tc := startCluster(t, 1, nil)
	c := tc.client("n1")
	tc.stop("n1")
	_, err := c.Get(t.Context(), "b", []byte("k"))
	require.Error(t, err)
	require.True(t, errors.Is(err, cairn.ErrUnavailable), "%v", err)
}

func TestStuckShutdownLogsWhereItWaits(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	n := &Node{log: zap.New(core)}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var phase atomic.Pointer[string]
	waiting := "peer connections"
	phase.Store(&waiting)
	end := n.watchShutdown(ctx, &phase)
	require.Eventually(t, func() bool { return logs.Len() == 1 }, 10*time.Second, 10*time.Millisecond)
	end()
	e := logs.All()[0]
	require.Equal(t, "peer connections", e.ContextMap()["waiting_for"])
	require.Contains(t, e.ContextMap()["goroutines"], "watchShutdown", "the stacks of every goroutine are logged")
}

func TestTimelyShutdownLogsNothing(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	n := &Node{log: zap.New(core)}
	ctx, cancel := context.WithCancel(t.Context())
	var phase atomic.Pointer[string]
	waiting := "store"
	phase.Store(&waiting)
	end := n.watchShutdown(ctx, &phase)
	cancel() // the context ends, but the shutdown finishes within its grace
	end()
	require.Zero(t, logs.Len())
}

// A peer's read of a copy in the object cache is answered on the
// connection's reader (HandleInline) with what the worker's way
// (serveReplicaGet) answers; what that way would refuse, or must look up
// beyond the cache, is left to it.
func TestReplicaGetInlineAnswersAsTheWorkerDoes(t *testing.T) {
	tc := startCluster(t, 1, nil)
	n := tc.nodes["n1"]
	c := tc.client("n1")
	_, err := c.Put(t.Context(), "b", []byte("k"), []byte("v"))
	require.NoError(t, err)
	p := n.ring().KeyPartition("b", []byte("k"))
	peer := transport.Peer{Node: "n2"}
	body := func(req wire.ReplicaGetReq) []byte {
		frame, err := wire.AppendFrame(nil, 1, wire.TypeReplicaGet, req, wire.DefaultMaxFrame)
		require.NoError(t, err)
		f, err := wire.ParseFrame(frame[4:])
		require.NoError(t, err)
		return f.Body
	}

	req := body(wire.ReplicaGetReq{Partition: p, Bucket: "b", Key: []byte("k")})
	rt, inline, ok := n.HandleInline(peer, wire.TypeReplicaGet, req)
	require.True(t, ok, "a cached copy is answered inline")
	require.Equal(t, wire.TypeReplicaGetResp, rt)
	_, viaWorker, err := n.Handle(t.Context(), peer, wire.TypeReplicaGet, req)
	require.NoError(t, err)
	require.Equal(t, viaWorker, inline)
	require.True(t, inline.(wire.ReplicaGetResp).Found)
	require.Equal(t, []byte("v"), inline.(wire.ReplicaGetResp).Object.Siblings[0].Value)

	for name, c := range map[string]struct {
		peer transport.Peer
		t    wire.Type
		body []byte
	}{
		"a client, not a peer":         {transport.Peer{}, wire.TypeReplicaGet, req},
		"another type":                 {peer, wire.TypeGet, req},
		"a key never written":          {peer, wire.TypeReplicaGet, body(wire.ReplicaGetReq{Partition: n.ring().KeyPartition("b", []byte("nothing")), Bucket: "b", Key: []byte("nothing")})},
		"the wrong partition":          {peer, wire.TypeReplicaGet, body(wire.ReplicaGetReq{Partition: p + 1, Bucket: "b", Key: []byte("k")})},
		"a read with the hints":        {peer, wire.TypeReplicaGet, body(wire.ReplicaGetReq{Partition: p, Bucket: "b", Key: []byte("k"), AllHints: true})},
		"a body that is not a request": {peer, wire.TypeReplicaGet, []byte{0xc1}},
	} {
		_, _, ok := n.HandleInline(c.peer, c.t, c.body)
		require.False(t, ok, name)
	}
}
