package client

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// overloadedNode refuses its next refuse requests as overloaded, as a node
// whose in-flight budget is spent does, then serves writes.
type overloadedNode struct {
	refuse atomic.Int64
	calls  atomic.Int64
}

func (h *overloadedNode) Handle(_ context.Context, _ transport.Peer, t wire.Type, _ []byte) (wire.Type, any, error) {
	h.calls.Add(1)
	if h.refuse.Add(-1) >= 0 {
		return 0, nil, fmt.Errorf("%w: the in-flight budget is spent", cairn.ErrOverloaded)
	}
	switch t {
	case wire.TypePut:
		return t + 1, wire.PutResp{}, nil
	case wire.TypeDelete:
		return t + 1, wire.DeleteResp{}, nil
	}
	return 0, nil, cairn.InvalidArgument("not served here")
}

func startOverloadedNode(t *testing.T) (*overloadedNode, string) {
	t.Helper()
	h := &overloadedNode{}
	srv := transport.NewServer(transport.DefaultConfig(), h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-done)
	})
	return h, ln.Addr().String()
}

func TestWritesRefusedAsOverloadedAreSentAgain(t *testing.T) {
	h, addr := startOverloadedNode(t)
	c := testClient(t, Config{Seeds: []string{addr}}, time.Now)
	h.refuse.Store(2)
	_, err := c.Put(t.Context(), "b", []byte("k"), []byte("v"))
	require.NoError(t, err, "the third attempt is served")
	require.Equal(t, int64(3), h.calls.Load())
	require.Equal(t, uint64(2), c.Stats().Retries)

	// Past MaxAttempts the refusal comes back.
	h.calls.Store(0)
	h.refuse.Store(100)
	_, err = c.Delete(t.Context(), "b", []byte("k"))
	require.ErrorIs(t, err, ErrOverloaded)
	require.Equal(t, int64(c.cfg.Retry.MaxAttempts), h.calls.Load())
}

func TestOverloadedRetriesEndWithTheCall(t *testing.T) {
	h, addr := startOverloadedNode(t)
	cfg := Config{Seeds: []string{addr}}
	// Pauses drawn from up to an hour, and attempts to spare: the call's
	// deadline is what ends it.
	cfg.Retry = RetryPolicy{MaxAttempts: 16, Backoff: time.Hour, MaxBackoff: time.Hour, BudgetRatio: 1, BudgetPerSecond: 100}
	c := testClient(t, cfg, time.Now)
	h.refuse.Store(1000)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Put(ctx, "b", []byte("k"), []byte("v"))
	require.ErrorIs(t, err, ErrOverloaded, "the last refusal is what the caller learns")
	require.Less(t, h.calls.Load(), int64(16), "the deadline ended the backoff, not the attempts")
}
