package transport

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// smallBuffers gives accepted connections a small, fixed send buffer (no
// autotuning), so that what a client does not read stays in the server's
// queue, where the tests can see it, rather than in the kernel's.
func smallBuffers(ln net.Listener) net.Listener { return smallBufListener{ln} }

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

// dialHello connects from the local IP from (any when empty) with a small
// receive buffer, says hello naming node, and returns the connection with
// the handshake's answer.
func dialHello(t *testing.T, addr, from, node string) (net.Conn, wire.Frame) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
		})
		return errors.Join(err, serr)
	}}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write(helloFrame(t, wire.Hello{Cluster: "test", Node: node}))
	require.NoError(t, err)
	var pre [5]byte
	_, err = io.ReadFull(c, pre[:])
	require.NoError(t, err)
	return c, readFrame(t, c)
}

// client is a raw connection that passed its handshake as a client.
func client(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	c, f := dialHello(t, addr, from, "")
	require.Equal(t, wire.TypeHelloOK, f.Type)
	return c
}

// refused expects the handshake's answer to be an error naming sentinel.
func refused(t *testing.T, f wire.Frame, sentinel error) {
	t.Helper()
	require.Equal(t, wire.TypeError, f.Type)
	var e wire.ErrorResp
	require.NoError(t, wire.Decode(f.Body, &e))
	require.ErrorIs(t, e.Err(), sentinel)
}

// pipeline sends gets of keys with ids 1, 2, ... in one write, reading
// nothing.
func pipeline(t *testing.T, c net.Conn, keys ...string) {
	t.Helper()
	var out []byte
	for i, k := range keys {
		var err error
		out, err = wire.AppendFrame(out, uint64(i+1), wire.TypeGet, wire.GetReq{Bucket: "b", Key: []byte(k)}, wire.DefaultMaxFrame)
		require.NoError(t, err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write(out)
	require.NoError(t, err)
}

func repeat(key string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = key
	}
	return keys
}

// waitIdle waits until the server holds no request or answer bytes.
func (ts *testServer) waitIdle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, p := ts.srv.InFlightBytes()
		return c == 0 && p == 0
	}, 10*time.Second, time.Millisecond, "every byte reserved or queued is given back")
}

func TestSlowReaderIsPausedAtItsCap(t *testing.T) {
	ts := startServerOn(t, func(c *Config) { c.MaxConnBytes = 1 << 20 }, smallBuffers)
	const n, size = 100, 512 << 10
	c := client(t, ts.addr(), "")
	pipeline(t, c, repeat("big:"+strconv.Itoa(size), n)...)
	ts.waitEvent(t, EventPaused)
	// A fresh connection reserves a sixteenth of its cap per request
	// until it has answers, so 16 are read; their answers, queued and
	// not read, keep it over its cap: nothing more is read.
	require.Never(t, func() bool { return ts.h.calls.Load() > 16 }, 300*time.Millisecond, 5*time.Millisecond,
		"a connection over its cap is not read")
	held, _ := ts.srv.InFlightBytes()
	// (Each answer is held as its buffer, a little larger than the frame.)
	require.LessOrEqual(t, held, int64(16*size*5/4), "what the server holds for it is bounded")

	// Another connection is served meanwhile.
	got, err := get(t.Context(), newPool(t, nil), ts.addr(), "other")
	require.NoError(t, err)
	require.Equal(t, "b/other", got)

	// Reading drains it below the cap, and the rest is served.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	seen := map[uint64]bool{}
	for range n {
		f := readFrame(t, c)
		require.Equal(t, wire.TypeGetResp, f.Type)
		var resp wire.GetResp
		require.NoError(t, wire.Decode(f.Body, &resp))
		require.Len(t, resp.Siblings[0].Value, size)
		seen[f.ID] = true
	}
	require.Len(t, seen, n)
	ts.waitIdle(t)
}

func TestSlotIsHeldUntilTheAnswerIsWritten(t *testing.T) {
	ts := startServerOn(t, func(c *Config) {
		c.MaxInFlight = 2
		c.MaxConnBytes = 1 << 30 // only the slots bound this connection
	}, smallBuffers)
	const n, size = 12, 1 << 20
	c := client(t, ts.addr(), "")
	pipeline(t, c, repeat("big:"+strconv.Itoa(size), n)...)
	require.Eventually(t, func() bool { return ts.h.calls.Load() >= 2 }, 10*time.Second, time.Millisecond)
	// Two answers are more than the socket buffers take: neither is
	// written while the client does not read, so both keep their slots.
	require.Never(t, func() bool { return ts.h.calls.Load() > 2 }, 300*time.Millisecond, 5*time.Millisecond,
		"a slot is freed when its answer is written, not when it is queued")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range n {
		require.Equal(t, wire.TypeGetResp, readFrame(t, c).Type)
	}
	require.Equal(t, int64(n), ts.h.calls.Load())
	ts.waitIdle(t)
}

func TestPingFloodIsPausedToo(t *testing.T) {
	ts := startServerOn(t, func(c *Config) { c.MaxConnBytes = 64 << 10 }, smallBuffers)
	c := client(t, ts.addr(), "")
	var out []byte
	for i := range 20000 {
		var err error
		out, err = wire.AppendFrame(out, uint64(i+1), wire.TypePing, struct{}{}, wire.DefaultMaxFrame)
		require.NoError(t, err)
	}
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write(out) // blocks once the server stops reading
	}()
	ts.waitEvent(t, EventPaused)
	require.Never(t, func() bool {
		held, _ := ts.srv.InFlightBytes()
		return held > 64<<10+4<<10
	}, 200*time.Millisecond, time.Millisecond, "pongs not read count against the cap")
	_ = c.Close()
	ts.waitIdle(t)
}

func TestInFlightBudgetAnswersOverloaded(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxInFlightBytes = 1 << 20
		c.MaxPeerInFlightBytes = 1 << 20
	})
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	// A fresh client connection reserves 256 KiB per request (a
	// sixteenth of its 4 MiB cap): four blocked requests spend the
	// budget.
	blocked := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := get(t.Context(), p, ts.addr(), "block")
			blocked <- err
		}()
	}
	require.Eventually(t, func() bool { return ts.h.calls.Load() == 4 }, 10*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := get(ctx, p, ts.addr(), "k")
	require.ErrorIs(t, err, cairn.ErrOverloaded, "refused at once, not left to time out")
	require.Equal(t, int64(4), ts.h.calls.Load(), "a refused request is not served")
	ts.waitEvent(t, EventOverloaded)

	// Peers draw on a budget of their own.
	peer := newPool(t, func(c *Config) { c.Node = "n2" })
	got, err := get(ctx, peer, ts.addr(), "replica")
	require.NoError(t, err)
	require.Equal(t, "b/replica", got)

	close(ts.h.release)
	for range 4 {
		require.NoError(t, <-blocked)
	}
	_, err = get(ctx, p, ts.addr(), "k")
	require.NoError(t, err, "the budget is given back as answers are written")
	ts.waitIdle(t)
}

func TestLostConnectionCancelsItsRequests(t *testing.T) {
	ts := startServerOn(t, func(c *Config) { c.MaxConnBytes = 1 << 20 }, smallBuffers)
	c := client(t, ts.addr(), "")
	pipeline(t, c, append([]string{"block"}, repeat("big:1048576", 40)...)...)
	ts.waitEvent(t, EventPaused)
	require.NoError(t, c.Close())
	// The connection is not being read, so it is the writer that finds
	// the far side gone; the request still running learns it at once,
	// not at its deadline.
	require.Eventually(t, func() bool { return ts.h.cancelled.Load() == 1 }, 10*time.Second, time.Millisecond)
	ts.waitIdle(t)
}

func TestConnectionCapsCountAfterTheHandshake(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxConns = 3
		c.MaxPeerConns = 2
		c.HandshakeTimeout = time.Minute
		c.IdleEvictAfter = 0 // idle clients keep their places here
	})
	// Sockets that never say hello take no client's place.
	for range 5 {
		rawConn(t, ts.addr())
	}
	held := []net.Conn{client(t, ts.addr(), ""), client(t, ts.addr(), ""), client(t, ts.addr(), "")}
	_, f := dialHello(t, ts.addr(), "", "")
	refused(t, f, cairn.ErrOverloaded)
	ts.waitEvent(t, EventRejectedLimit)

	// Peers have places of their own, beyond the clients' cap.
	p := newPool(t, func(c *Config) { c.Node = "n2"; c.ConnsPerAddr = 1 })
	_, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	c, f := dialHello(t, ts.addr(), "", "n3")
	require.Equal(t, wire.TypeHelloOK, f.Type)
	_, f = dialHello(t, ts.addr(), "", "n4")
	refused(t, f, cairn.ErrOverloaded)
	ts.waitEvent(t, EventRejectedPeerLimit)
	require.NoError(t, c.Close())

	// Closing a client frees its place.
	require.NoError(t, held[0].Close())
	require.Eventually(t, func() bool {
		c, f := dialHello(t, ts.addr(), "", "")
		_ = c.Close()
		return f.Type == wire.TypeHelloOK
	}, 10*time.Second, 10*time.Millisecond)
}

func TestPerSourceCapCountsClientsOnly(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxConnsPerSource = 2 })
	client(t, ts.addr(), "127.0.0.1")
	client(t, ts.addr(), "127.0.0.1")
	_, f := dialHello(t, ts.addr(), "127.0.0.1", "")
	refused(t, f, cairn.ErrOverloaded)
	ev := ts.waitEvent(t, EventRejectedSource)
	require.ErrorContains(t, ev.Err, "127.0.0.1")

	// Another address is not held back, nor is a peer from this one.
	client(t, ts.addr(), "127.0.0.2")
	_, f = dialHello(t, ts.addr(), "127.0.0.1", "n2")
	require.Equal(t, wire.TypeHelloOK, f.Type)
}

func TestSilentSocketsMakeRoomForNewcomers(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxHandshakes = 4
		c.HandshakeTimeout = time.Minute
	})
	var silent []net.Conn
	for range 10 {
		silent = append(silent, rawConn(t, ts.addr()))
	}
	// The six oldest were closed to make room for the newer ones.
	for _, c := range silent[:6] {
		_, err := io.ReadAll(c)
		require.NoError(t, err, "closed by the server")
	}
	ts.waitEvent(t, EventHandshakeEvicted)
	// However many sockets sit silent, a hello gets through.
	got, err := get(t.Context(), newPool(t, nil), ts.addr(), "k")
	require.NoError(t, err)
	require.Equal(t, "b/k", got)
}

func TestHandshakeDeadlineClosesSilentSockets(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	var wg sync.WaitGroup
	for range 20 {
		c := rawConn(t, ts.addr())
		wg.Go(func() {
			_, err := io.ReadAll(c)
			require.NoError(t, err, "closed by the server")
		})
	}
	wg.Wait()
	ts.waitEvent(t, EventHandshakeFailed)
}

func TestVerifyPeerRefusesANodeItDoesNotRecognise(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.VerifyPeer = func(_ context.Context, node string, remote net.Addr, _ *x509.Certificate) error {
			if node == "impostor" {
				return fmt.Errorf("member %s is not at %v", node, remote)
			}
			return nil
		}
	})
	_, f := dialHello(t, ts.addr(), "", "impostor")
	refused(t, f, cairn.ErrUnauthorized)
	ev := ts.waitEvent(t, EventPeerRefused)
	require.Equal(t, "impostor", ev.Node)

	p := newPool(t, func(c *Config) { c.Node = "n2" })
	_, err := get(t.Context(), p, ts.addr(), "k")
	require.NoError(t, err)
	_, ok := ts.h.peers.Load("n2")
	require.True(t, ok)
	_, ok = ts.h.peers.Load("impostor")
	require.False(t, ok, "the impostor never reached the handler")
}

func TestEstimateRisesAtOnceAndFallsSlowly(t *testing.T) {
	est := int64(256 << 10)
	require.Equal(t, int64(1<<20), nextEstimate(est, 1<<20), "a larger answer raises it at once")
	require.Equal(t, est-est/8, nextEstimate(est, 100), "a smaller one lowers it by an eighth")
	for range 100 {
		est = nextEstimate(est, 100)
	}
	require.Equal(t, int64(minEstimate), est, "never below the floor")
}

func TestIdleClientMakesRoomForANewOneWhenTheCapIsFull(t *testing.T) {
	t.Run("none idle long enough", func(t *testing.T) {
		ts := startServer(t, func(c *Config) {
			c.MaxConns = 2
			c.IdleEvictAfter = time.Hour
		})
		client(t, ts.addr(), "")
		client(t, ts.addr(), "")
		_, f := dialHello(t, ts.addr(), "", "")
		refused(t, f, cairn.ErrOverloaded)
	})
	t.Run("the idlest goes, a busy one stays", func(t *testing.T) {
		const after = 50 * time.Millisecond
		ts := startServer(t, func(c *Config) {
			c.MaxConns = 3
			c.IdleEvictAfter = after
		})
		idlest := client(t, ts.addr(), "")
		time.Sleep(after / 5)
		idle := client(t, ts.addr(), "")
		busy := client(t, ts.addr(), "")
		// A request in flight for as long as the test wants keeps busy off
		// the list, however long since it sent it.
		pipeline(t, busy, "block")
		require.Eventually(t, func() bool { return ts.h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
		time.Sleep(2 * after)

		c, f := dialHello(t, ts.addr(), "", "")
		require.Equal(t, wire.TypeHelloOK, f.Type, "an idle client made room")
		ts.waitEvent(t, EventIdleEvicted)
		_ = idlest.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := idlest.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, "the client idle the longest was closed")

		// The newcomer took the place: the books stay exact, so the next
		// one evicts the other idle client, never the busy one.
		_, f = dialHello(t, ts.addr(), "", "")
		require.Equal(t, wire.TypeHelloOK, f.Type)
		_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = idle.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF)
		require.NoError(t, c.Close())

		close(ts.h.release)
		_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
		require.Equal(t, wire.TypeGetResp, readFrame(t, busy).Type, "the busy client was served to the end")
	})
}
