package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testHandler answers a get with the bucket and key echoed as a value; a
// key "sleep:<ms>" sleeps first (or until the request's context ends), a
// key "err:<text>" fails with invalid argument, "block" waits for release,
// "deep" runs through 16 KiB of stack first, "big:<n>" answers n bytes.
// cancelled counts the requests whose context ended while they waited.
type testHandler struct {
	calls     atomic.Int64
	cancelled atomic.Int64
	release   chan struct{}
	peers     sync.Map // peer node name -> true
	// principals holds what Authenticate made of each connection that
	// sent a request.
	principals sync.Map
}

func (h *testHandler) Handle(ctx context.Context, peer Peer, t wire.Type, body []byte) (wire.Type, any, error) {
	h.calls.Add(1)
	if peer.Node != "" {
		h.peers.Store(peer.Node, true)
	}
	if peer.Principal != nil {
		h.principals.Store(peer.Principal, string(peer.Auth))
	}
	if t != wire.TypeGet {
		return 0, nil, cairn.InvalidArgument("type %v not served", t)
	}
	var req wire.GetReq
	if err := wire.Decode(body, &req); err != nil {
		return 0, nil, err
	}
	key := string(req.Key)
	switch {
	case len(key) > 6 && key[:6] == "sleep:":
		ms, _ := strconv.Atoi(key[6:])
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			h.cancelled.Add(1)
			return 0, nil, ctx.Err()
		}
	case len(key) > 4 && key[:4] == "err:":
		return 0, nil, cairn.InvalidArgument("%s", key[4:])
	case key == "block":
		select {
		case <-h.release:
		case <-ctx.Done():
			h.cancelled.Add(1)
			return 0, nil, ctx.Err()
		}
	case key == "deep":
		// A handler whose stack reaches as deep as a pebble read does.
		deepStack(16)
	case key == "huge":
		return wire.TypeGetResp, wire.GetResp{Siblings: []wire.Sibling{{Value: make([]byte, 2<<20)}}}, nil
	case len(key) > 4 && key[:4] == "big:":
		n, _ := strconv.Atoi(key[4:])
		return wire.TypeGetResp, wire.GetResp{Found: true, Siblings: []wire.Sibling{{Value: make([]byte, n)}}}, nil
	}
	return wire.TypeGetResp, wire.GetResp{Found: true, Siblings: []wire.Sibling{{Value: []byte(req.Bucket + "/" + key)}}}, nil
}

// deepStack uses about depth KiB of stack.
//
//go:noinline
func deepStack(depth int) byte {
	var frame [1 << 10]byte
	frame[depth%len(frame)] = byte(depth)
	if depth <= 1 {
		return frame[0]
	}
	return deepStack(depth-1) + frame[depth%len(frame)]
}

type testServer struct {
	srv    *Server
	ln     net.Listener
	h      *testHandler
	events chan Event
	done   chan error
}

func startServer(t *testing.T, tune func(*Config)) *testServer {
	t.Helper()
	return startServerOn(t, tune, nil)
}

// startServerOn is startServer with the listener wrapped by wrap.
func startServerOn(t *testing.T, tune func(*Config), wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	cfg.Node = "server"
	ts := &testServer{h: &testHandler{release: make(chan struct{})}, events: make(chan Event, 10000), done: make(chan error, 1)}
	cfg.OnEvent = func(e Event) {
		select {
		case ts.events <- e:
		default:
		}
	}
	if tune != nil {
		tune(&cfg)
	}
	var err error
	ts.ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if wrap != nil {
		ts.ln = wrap(ts.ln)
	}
	ts.srv = NewServer(cfg, ts.h)
	go func() { ts.done <- ts.srv.Serve(ts.ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, ts.srv.Shutdown(ctx))
		require.NoError(t, <-ts.done)
	})
	return ts
}

func (ts *testServer) addr() string { return ts.ln.Addr().String() }

// waitEvent waits for an event of the kind, failing the test after 10s.
func (ts *testServer) waitEvent(t *testing.T, kind EventKind) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ts.events:
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event within 10s", kind)
		}
	}
}

func newPool(t *testing.T, tune func(*Config)) *Pool {
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	if tune != nil {
		tune(&cfg)
	}
	p := NewPool(cfg)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func get(ctx context.Context, p *Pool, addr, key string) (string, error) {
	var resp wire.GetResp
	err := p.Call(ctx, addr, wire.TypeGet, wire.GetReq{Bucket: "b", Key: []byte(key)}, &resp)
	if err != nil {
		return "", err
	}
	return string(resp.Siblings[0].Value), nil
}

func TestCallRoundTrip(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.Node = "n7" })
	got, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	require.Equal(t, "b/k", got)
	_, ok := ts.h.peers.Load("n7")
	require.True(t, ok, "the handshake's node name reaches the handler")
	require.NoError(t, p.Call(t.Context(), ts.addr(), wire.TypePing, struct{}{}, nil))
}

func TestManyCallsInFlightAnsweredOutOfOrder(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Later calls sleep less, so answers come back out of order.
			key := fmt.Sprintf("sleep:%d", (200-i)%50)
			got, err := get(t.Context(), p, ts.addr(), key)
			if err == nil && got != "b/"+key {
				err = fmt.Errorf("call %d got %q", i, got)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestErrorsComeBackAsSentinels(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, nil)
	_, err := get(t.Context(), p, ts.addr(), "err:bad thing")
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.Contains(t, err.Error(), "bad thing")
	// The connection survives a request's error.
	_, err = get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	// A response too large for a frame becomes an error, not a broken
	// connection.
	small := startServer(t, func(c *Config) { c.MaxFrame = 1 << 20 })
	_, err = get(t.Context(), p, small.addr(), "huge")
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, err = get(t.Context(), p, small.addr(), "k")
	require.NoError(t, err)
}

func TestCallDeadline(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	_, err := get(t.Context(), p, ts.addr(), "connect first")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = get(ctx, p, ts.addr(), "block")
	require.ErrorIs(t, err, cairn.ErrTimeout)
	require.False(t, IsDialError(err), "the request was sent: not a dial error")
	close(ts.h.release)
}

func TestHandshakeRefusals(t *testing.T) {
	ts := startServer(t, nil)
	other := newPool(t, func(c *Config) { c.Cluster = "other" })
	_, err := get(t.Context(), other, ts.addr(), "k")
	require.ErrorIs(t, err, cairn.ErrProtocol)
	require.True(t, IsDialError(err))
	require.Contains(t, err.Error(), `cluster "test"`)
	ts.waitEvent(t, EventHandshakeFailed)

	// A credential beyond its bound is refused before anyone looks at it.
	c := rawConn(t, ts.addr())
	_, err = c.Write(helloFrame(t, wire.Hello{Cluster: "test", Auth: make([]byte, maxHelloAuth+1)}))
	require.NoError(t, err)
	requireRefusal(t, c, cairn.ErrUnauthorized)

	// A client that is not speaking our protocol at all.
	c = rawConn(t, ts.addr())
	_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	requireRefusal(t, c, cairn.ErrProtocol)
}

func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	p := newPool(t, nil)
	_, err = get(t.Context(), p, addr, "k")
	require.True(t, IsDialError(err), "%v", err)
}

func TestPoolReconnectsAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	srv := NewServer(cfg, &testHandler{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	p := newPool(t, nil)
	_, err = get(t.Context(), p, addr, "k")
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown(t.Context()))
	require.NoError(t, <-done)

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	srv = NewServer(cfg, &testHandler{})
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		require.NoError(t, srv.Shutdown(t.Context()))
		require.NoError(t, <-done)
	}()
	// The first call may find the old connection dead; the pool must not
	// keep handing it out.
	require.Eventually(t, func() bool {
		_, err := get(t.Context(), p, addr, "k")
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
}

func TestShutdownLetsRequestsInFlightFinish(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, nil)
	result := make(chan error, 1)
	go func() {
		_, err := get(t.Context(), p, ts.addr(), "sleep:300")
		result <- err
	}()
	require.Eventually(t, func() bool { return ts.h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, ts.srv.Shutdown(ctx))
	require.NoError(t, <-result, "a request in flight at shutdown gets its answer")
	_, err := get(t.Context(), p, ts.addr(), "k")
	require.Error(t, err, "no new requests after shutdown")
}

func TestShutdownCutsOffWhatOutlivesItsContext(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, nil)
	result := make(chan error, 1)
	go func() {
		_, err := get(t.Context(), p, ts.addr(), "block")
		result <- err
	}()
	require.Eventually(t, func() bool { return ts.h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, ts.srv.Shutdown(ctx), context.DeadlineExceeded)
	require.ErrorIs(t, <-result, cairn.ErrUnavailable)
}

// rawConn dials and exchanges preambles, leaving the handshake to the test.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var pre [5]byte
	_, err = io.ReadFull(c, pre[:])
	require.NoError(t, err)
	require.Equal(t, wire.Preamble, pre)
	return c
}

func helloFrame(t *testing.T, h wire.Hello) []byte {
	f, err := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 1, wire.TypeHello, h, wire.DefaultMaxFrame)
	require.NoError(t, err)
	return f
}

// handshaken returns a raw connection that passed the handshake.
func handshaken(t *testing.T, addr string) net.Conn {
	t.Helper()
	c := rawConn(t, addr)
	_, err := c.Write(helloFrame(t, wire.Hello{Cluster: "test"}))
	require.NoError(t, err)
	f := readFrame(t, c)
	require.Equal(t, wire.TypeHelloOK, f.Type)
	return c
}

func readFrame(t *testing.T, c net.Conn) wire.Frame {
	t.Helper()
	payload, err := wire.ReadFrame(c, wire.DefaultMaxFrame)
	require.NoError(t, err)
	f, err := wire.ParseFrame(payload)
	require.NoError(t, err)
	return f
}

// requireRefusal expects an error frame naming the sentinel, then the
// connection closing.
func requireRefusal(t *testing.T, c net.Conn, sentinel error) {
	t.Helper()
	f := readFrame(t, c)
	require.Equal(t, wire.TypeError, f.Type)
	var e wire.ErrorResp
	require.NoError(t, wire.Decode(f.Body, &e))
	require.ErrorIs(t, e.Err(), sentinel)
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the connection is closed after the error")
}

func frameHeader(n uint32) []byte {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], n)
	return h[:]
}

func TestHostileFramesCloseOnlyTheirConnection(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, nil)
	cases := map[string][]byte{
		"2 GiB frame header":    frameHeader(2 << 30),
		"tiny frame, 4 GiB bin": append(frameHeader(8), 0x93, 0x01, 0x0b, 0xc6, 0xff, 0xff, 0xff, 0xff),
		"tiny frame, 4 GiB arr": append(frameHeader(8), 0x93, 0x01, 0x0b, 0xdd, 0xff, 0xff, 0xff, 0xff),
		"random bytes as frame": append(frameHeader(6), 0xc1, 0x17, 0x99, 0x00, 0xfe, 0x42),
		"empty frame":           frameHeader(0),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c := handshaken(t, ts.addr())
			_, err := c.Write(b)
			require.NoError(t, err)
			requireRefusal(t, c, cairn.ErrProtocol)
			got, err := get(t.Context(), p, ts.addr(), "still-served")
			require.NoError(t, err)
			require.Equal(t, "b/still-served", got)
		})
	}
}

func TestHostileConnectionsKeepServerMemoryFlat(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 200 {
		c := handshaken(t, ts.addr())
		_, err := c.Write(append(frameHeader(8), 0x93, 0x01, 0x0b, 0xc6, 0xff, 0xff, 0xff, 0xff))
		require.NoError(t, err)
		_, err = c.Write(frameHeader(2 << 30))
		_ = err // the server may already have closed it
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	}
	_, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	runtime.ReadMemStats(&after)
	// 200 connections each announcing 4 GiB and 2 GiB: a server that
	// believed them would have asked for over a terabyte.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("200 hostile connections: %d KiB allocated in total", allocated>>10)
	require.Less(t, allocated, uint64(64<<20))
}

func TestSilentConnectionsAreClosed(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.HandshakeTimeout = 100 * time.Millisecond
		c.IdleTimeout = 200 * time.Millisecond
	})
	// Never says hello.
	c := rawConn(t, ts.addr())
	_, err := io.ReadAll(c)
	require.NoError(t, err, "closed by the server")
	ts.waitEvent(t, EventHandshakeFailed)

	// Says hello, then trickles half a frame and stops.
	c = handshaken(t, ts.addr())
	_, err = c.Write(append(frameHeader(100), 0x93))
	require.NoError(t, err)
	_, err = io.ReadAll(c)
	require.NoError(t, err)
	ts.waitEvent(t, EventIdleTimeout)
}

func TestInFlightCapPushesBack(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxInFlight = 4 })
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := get(t.Context(), p, ts.addr(), "block")
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return ts.h.calls.Load() == 4 }, 10*time.Second, time.Millisecond)
	require.Never(t, func() bool { return ts.h.calls.Load() > 4 }, 100*time.Millisecond, 10*time.Millisecond,
		"no more than MaxInFlight handlers at once")
	close(ts.h.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(20), ts.h.calls.Load())
}

func TestPoolCloseFailsCallsInFlight(t *testing.T) {
	ts := startServer(t, nil)
	p := NewPool(DefaultConfig())
	p.cfg.Cluster = "test"
	result := make(chan error, 1)
	go func() {
		_, err := get(context.Background(), p, ts.addr(), "block")
		result <- err
	}()
	require.Eventually(t, func() bool { return ts.h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
	err := <-result
	require.ErrorIs(t, err, cairn.ErrUnavailable)
	_, err = get(context.Background(), p, ts.addr(), "k")
	require.ErrorIs(t, err, ErrPoolClosed)
	close(ts.h.release)
}

func TestEventNames(t *testing.T) {
	require.Equal(t, "rejected_limit", EventRejectedLimit.String())
	require.Equal(t, "unknown", EventKind(99).String())
	require.True(t, errors.Is(&DialError{Err: io.EOF}, io.EOF))
}

// blackholeProxy forwards TCP connections to a server until told to drop
// everything on the connections open at that moment, as a network
// partition leaves connections: open, silent, in TCP's retransmission
// backoff. Connections made afterwards are forwarded normally.
type blackholeProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*proxied
	wg     sync.WaitGroup
}

type proxied struct {
	client, server net.Conn
	dropped        atomic.Bool
}

func startProxy(t *testing.T, target string) *blackholeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &blackholeProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			pc := &proxied{client: c, server: s}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(pc, c, s)
			go p.pipe(pc, s, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, pc := range p.conns {
			_ = pc.client.Close()
			_ = pc.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *blackholeProxy) pipe(pc *proxied, from, to net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			_ = to.Close()
			return
		}
		if pc.dropped.Load() {
			continue
		}
		if _, err := to.Write(buf[:n]); err != nil {
			return
		}
	}
}

// blackhole silences every connection open now.
func (p *blackholeProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.dropped.Store(true)
	}
}

func TestSilentConnectionIsReplacedAfterATimeout(t *testing.T) {
	ts := startServer(t, nil)
	proxy := startProxy(t, ts.addr())
	addr := proxy.ln.Addr().String()
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	_, err := get(t.Context(), p, addr, "k")
	require.NoError(t, err)

	proxy.blackhole()
	ctx, cancel := context.WithTimeout(t.Context(), quietLimit+500*time.Millisecond)
	_, err = get(ctx, p, addr, "k")
	cancel()
	require.ErrorIs(t, err, cairn.ErrTimeout, "the wedged connection answers nothing")

	// The connection stayed silent for the whole call, so the next call
	// goes over a new one instead of waiting on the wedged one.
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := get(ctx, p, addr, "k")
	require.NoError(t, err)
	require.Equal(t, "b/k", got)
}

func TestShortTimeoutsDoNotDropAHealthyConnection(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	_, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	_, err = get(ctx, p, ts.addr(), "sleep:200")
	cancel()
	require.ErrorIs(t, err, cairn.ErrTimeout)
	_, err = get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	accepted := 0
	for len(ts.events) > 0 {
		if e := <-ts.events; e.Kind == EventAccepted {
			accepted++
		}
	}
	require.Equal(t, 1, accepted, "one connection served everything")
}

func TestDrainLetsCallsFinishAndDialsAfresh(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	inflight := make(chan error, 1)
	go func() {
		_, err := get(t.Context(), p, ts.addr(), "sleep:300")
		inflight <- err
	}()
	require.Eventually(t, func() bool { return ts.h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	p.Drain(ts.addr())
	_, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	require.NoError(t, <-inflight, "the call on the drained connection still gets its answer")
	// The drained connection closes once its call is answered; the events
	// up to that close show how many connections were used.
	accepted, closed := 0, false
	deadline := time.After(10 * time.Second)
	for !closed {
		select {
		case e := <-ts.events:
			switch e.Kind {
			case EventAccepted:
				accepted++
			case EventClosed:
				closed = true
			}
		case <-deadline:
			t.Fatal("the drained connection did not close within 10s of its last call")
		}
	}
	for len(ts.events) > 0 {
		if e := <-ts.events; e.Kind == EventAccepted {
			accepted++
		}
	}
	require.Equal(t, 2, accepted, "the call after Drain used a new connection")
}

func TestIdleConnectionIsReplacedWithoutStallingThePool(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) {
		c.ConnsPerAddr = 1
		c.IdleTimeout = 200 * time.Millisecond // idle after 100ms on the client side
	})
	_, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond) // let the connection go idle
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := get(ctx, p, ts.addr(), "k")
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a call after the connection went idle did not return within 10s")
	}
	ts.waitEvent(t, EventClosed) // the idle connection was closed, not leaked
}

// slowHandshakeServer accepts connections and forwards them to target only
// once released, so a dial can be caught in the middle of its handshake.
func slowHandshakeServer(t *testing.T, target string) (addr string, accepted <-chan struct{}, release func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	acc := make(chan struct{}, 16)
	rel := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			acc <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-rel
				s, err := net.Dial("tcp", target)
				if err != nil {
					_ = c.Close()
					return
				}
				track(s)
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = io.Copy(s, c)
					_ = s.Close()
				}()
				_, _ = io.Copy(c, s)
				_ = c.Close()
			}()
		}
	}()
	release = func() { once.Do(func() { close(rel) }) }
	t.Cleanup(func() {
		release()
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), acc, release
}

func TestCloseDuringAHandshakeReturns(t *testing.T) {
	ts := startServer(t, nil)
	addr, accepted, release := slowHandshakeServer(t, ts.addr())
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	p := NewPool(cfg)
	callDone := make(chan error, 1)
	go func() {
		_, err := get(t.Context(), p, addr, "k")
		callDone <- err
	}()
	<-accepted
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.closed
	}, 10*time.Second, time.Millisecond)
	release() // a handshake that still finishes now must not wedge Close
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s while a dial was in its handshake")
	}
	require.ErrorIs(t, <-callDone, ErrPoolClosed)
}

// Calls that give up just as their answers arrive leave channels an answer
// may still be sent on; none of those answers may reach another call.
func TestLateAnswersNeverReachAnotherCall(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				bucket := fmt.Sprintf("g%d-%d", g, i)
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%4)*500*time.Microsecond)
				var resp wire.GetResp
				err := p.Call(ctx, ts.addr(), wire.TypeGet, wire.GetReq{Bucket: bucket, Key: []byte("sleep:1")}, &resp)
				cancel()
				if err != nil {
					if !errors.Is(err, cairn.ErrTimeout) {
						errs <- err
						return
					}
					continue
				}
				if got := string(resp.Siblings[0].Value); got != bucket+"/sleep:1" {
					errs <- fmt.Errorf("call for %s got the answer %q", bucket, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// A pool reads answers up to its frame limit; raising it (as a client does
// once a node says its own) lets the same pool read larger ones, and a
// lower figure never shrinks it.
func TestRaiseMaxFrame(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxFrame = 4 << 20 })
	p := newPool(t, func(c *Config) { c.MaxFrame = 1 << 20; c.ConnsPerAddr = 1 })
	var resp wire.GetResp
	err := p.Call(t.Context(), ts.addr(), wire.TypeGet, wire.GetReq{Bucket: "b", Key: []byte("huge")}, &resp)
	require.ErrorIs(t, err, wire.ErrFrameTooLarge, "a 2 MiB answer is over the pool's 1 MiB")

	p.RaiseMaxFrame(4 << 20)
	p.RaiseMaxFrame(2 << 20)
	require.Equal(t, 4<<20, p.MaxFrame())
	require.NoError(t, p.Call(t.Context(), ts.addr(), wire.TypeGet, wire.GetReq{Bucket: "b", Key: []byte("huge")}, &resp))
	require.Len(t, resp.Siblings[0].Value, 2<<20)
}

// Authenticate sees a client's credential and may refuse it; a refusal
// reaches the client as unauthorized with the reason, and an accepted
// credential travels with every request in Peer.Auth.
func TestAuthenticateChecksClientsCredential(t *testing.T) {
	var seen sync.Map
	ts := startServer(t, func(c *Config) {
		c.Authenticate = func(p Peer) (any, error) {
			if string(p.Auth) != "good" {
				return nil, errors.New("the token matches no user")
			}
			seen.Store(string(p.Auth), true)
			return "principal", nil
		}
	})
	bad := newPool(t, func(c *Config) { c.Auth = []byte("bad") })
	_, err := get(t.Context(), bad, ts.addr(), "k")
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.Contains(t, err.Error(), "the token matches no user")
	require.NotContains(t, err.Error(), "bad", "a refusal never repeats the credential")

	good := newPool(t, func(c *Config) { c.Auth = []byte("good") })
	_, err = get(t.Context(), good, ts.addr(), "k")
	require.NoError(t, err)
	_, ok := seen.Load("good")
	require.True(t, ok)
	auth, ok := ts.h.principals.Load("principal")
	require.True(t, ok, "the handler sees what Authenticate made of the connection")
	require.Equal(t, "good", auth)
}
