package transport

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestWorkersAreReused(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	for range 100 {
		_, err := get(t.Context(), p, ts.addr(), "k")
		require.NoError(t, err)
		// A worker parks just after its answer is queued: wait for it, so
		// the next call finds it parked.
		require.Eventually(t, func() bool {
			parked, live, _ := ts.srv.workers.Counts()
			return parked == live
		}, 10*time.Second, 100*time.Microsecond)
	}
	_, _, started := ts.srv.workers.Counts()
	require.Equal(t, 1, started, "100 calls one after another are served by one worker")
}

func TestShutdownStopsWorkers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	srv, addr, done := serveOn(t, cfg, &testHandler{release: make(chan struct{})})
	p := NewPool(cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := get(t.Context(), p, addr, "sleep:20")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, live, _ := srv.workers.Counts()
	require.Positive(t, live)
	require.NoError(t, p.Close())
	require.NoError(t, srv.Shutdown(t.Context()))
	require.NoError(t, <-done)
	_, live, _ = srv.workers.Counts()
	require.Zero(t, live)
}

// serveOn starts a server on a fresh port; the caller shuts it down.
func serveOn(t *testing.T, cfg Config, h Handler) (*Server, string, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer(cfg, h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return srv, ln.Addr().String(), done
}

// callbackHandler answers "outer" by calling its own server back: every
// request it serves holds a worker while it needs another.
type callbackHandler struct {
	testHandler
	pool *Pool
	addr string
}

func (h *callbackHandler) Handle(ctx context.Context, peer Peer, t wire.Type, body []byte) (wire.Type, any, error) {
	var req wire.GetReq
	if err := wire.Decode(body, &req); err != nil {
		return 0, nil, err
	}
	if string(req.Key) != "outer" {
		return h.testHandler.Handle(ctx, peer, t, body)
	}
	v, err := get(ctx, h.pool, h.addr, "inner")
	if err != nil {
		return 0, nil, err
	}
	return wire.TypeGetResp, wire.GetResp{Found: true, Siblings: []wire.Sibling{{Value: []byte("via " + v)}}}, nil
}

func TestHandlersThatCallBackDoNotDeadlock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	h := &callbackHandler{testHandler: testHandler{release: make(chan struct{})}}
	h.pool = NewPool(cfg)
	srv, addr, done := serveOn(t, cfg, h)
	h.addr = addr
	defer func() {
		require.NoError(t, h.pool.Close())
		require.NoError(t, srv.Shutdown(context.Background()))
		require.NoError(t, <-done)
	}()
	p := newPool(t, nil)
	// The blocked requests come over connections of their own: a fresh
	// connection serves 16 requests at once until its answers show they
	// are small (see nextEstimate), and these are never answered.
	pb := newPool(t, func(c *Config) { c.ConnsPerAddr = 8 })

	// Blocked requests hold workers; calls that need two at once still go
	// through beside them.
	blocked := make(chan error, 100)
	for range 100 {
		go func() {
			_, err := get(t.Context(), pb, addr, "block")
			blocked <- err
		}()
	}
	require.Eventually(t, func() bool { return h.calls.Load() >= 100 }, 10*time.Second, time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			v, err := get(ctx, p, addr, "outer")
			if err == nil && v != "via b/inner" {
				err = fmt.Errorf("answered %q", v)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	close(h.release)
	for range 100 {
		require.NoError(t, <-blocked)
	}
}

// inlineHandler answers a get of a key starting "inline:" on the reader,
// and leaves every other request to testHandler on a worker.
type inlineHandler struct {
	testHandler
	inline atomic.Int64
}

func (h *inlineHandler) HandleInline(_ Peer, t wire.Type, body []byte) (wire.Type, any, bool) {
	var req wire.GetReq
	if t != wire.TypeGet || wire.Decode(body, &req) != nil || !strings.HasPrefix(string(req.Key), "inline:") {
		return 0, nil, false
	}
	h.inline.Add(1)
	return wire.TypeGetResp, wire.GetResp{Found: true, Siblings: []wire.Sibling{{Value: []byte("inline " + string(req.Key))}}}, true
}

func TestInlineAnswersSkipTheWorkers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	h := &inlineHandler{testHandler: testHandler{release: make(chan struct{})}}
	srv, addr, done := serveOn(t, cfg, h)
	p := NewPool(cfg)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(h.release) }) }
	defer func() {
		release() // a failed check must not leave Shutdown waiting on it
		require.NoError(t, p.Close())
		require.NoError(t, srv.Shutdown(t.Context()))
		require.NoError(t, <-done)
	}()

	// A request held by a worker does not hold up the inline answers
	// behind it on the same connection.
	blocked := make(chan error, 1)
	go func() {
		_, err := get(t.Context(), p, addr, "block")
		blocked <- err
	}()
	require.Eventually(t, func() bool { return h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	for i := range 100 {
		v, err := get(t.Context(), p, addr, fmt.Sprintf("inline:%d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("inline inline:%d", i), v)
	}
	require.EqualValues(t, 100, h.inline.Load())
	require.EqualValues(t, 1, h.calls.Load(), "answered inline, never handed to Handle")
	_, _, started := srv.workers.Counts()
	require.Equal(t, 1, started, "only the blocked request took a worker")

	// What the inline path declines goes to Handle as before.
	v, err := get(t.Context(), p, addr, "k")
	require.NoError(t, err)
	require.Equal(t, "b/k", v)
	release()
	require.NoError(t, <-blocked)

	// Every inline answer gave back its request slot and its bytes.
	require.Eventually(t, func() bool {
		clients, peers := srv.InFlightBytes()
		return clients == 0 && peers == 0
	}, 10*time.Second, time.Millisecond)
}
