package transport

import (
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// TestTrafficCountsFramesBothWays checks the byte counters against frames
// encoded here: what the pool sent is what the server received, and the
// other way round, handshakes excluded.
func TestTrafficCountsFramesBothWays(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	got, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	require.Equal(t, "b/k", got)

	req, err := wire.AppendFrame(nil, 1, wire.TypeGet, wire.GetReq{Bucket: "b", Key: []byte("k")}, wire.DefaultMaxFrame)
	require.NoError(t, err)
	resp, err := wire.AppendFrame(nil, 1, wire.TypeGetResp, wire.GetResp{Found: true, Siblings: []wire.Sibling{{Value: []byte("b/k")}}}, wire.DefaultMaxFrame)
	require.NoError(t, err)
	require.Equal(t, uint64(len(resp)), p.Traffic().Received())
	// A writer counts what it sent once its write returns, which may be
	// after the other side has read it and answered: the pool's request
	// and the server's answer alike.
	require.Eventually(t, func() bool { return p.Traffic().Sent() == uint64(len(req)) }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return ts.srv.Traffic().Sent() == uint64(len(resp)) }, 10*time.Second, time.Millisecond)
	require.Equal(t, uint64(len(req)), ts.srv.Traffic().Received())
}

func TestTrafficAddsUpUnderConcurrentCalls(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				_, err := get(t.Context(), p, ts.addr(), string(rune('a'+i))+string(rune('a'+j%26)))
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return ts.srv.Traffic().Sent() == p.Traffic().Received() && ts.srv.Traffic().Received() == p.Traffic().Sent()
	}, 10*time.Second, time.Millisecond)
	// 400 calls of at least a length prefix and a header each way.
	require.Greater(t, p.Traffic().Sent(), uint64(400*(frameLengthPrefix+3)))
	require.Greater(t, p.Traffic().Received(), uint64(400*(frameLengthPrefix+3)))
}
