package transport

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// tcpPair is a connected pair of sockets on 127.0.0.1: the dialled end
// wrapped by quiet, and the accepted end as it is.
func tcpPair(t testing.TB) (*quietConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	q, ok := quiet(c).(*quietConn)
	require.True(t, ok, "a TCP socket is wrapped")
	far := <-accepted
	require.NotNil(t, far)
	t.Cleanup(func() {
		_ = q.Close()
		_ = far.Close()
	})
	return q, far
}

func TestQuietLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	require.Equal(t, a, quiet(a))
}

// Writes and reads far larger than the socket's buffers go through the
// EAGAIN path on both ends, and every byte arrives in order.
func TestQuietConnCarriesLargeWritesWhole(t *testing.T) {
	q, far := tcpPair(t)
	out := make([]byte, 8<<20)
	for i := range out {
		out[i] = byte(rand.Uint32())
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(far)
		got <- b
	}()
	n, err := q.Write(out)
	require.NoError(t, err)
	require.Equal(t, len(out), n)
	require.NoError(t, q.CloseWrite())
	require.True(t, bytes.Equal(out, <-got))

	// And the other way, read by the quiet end in small pieces.
	back := out[:3<<20]
	go func() {
		_, _ = far.Write(back)
		_ = far.Close()
	}()
	var in bytes.Buffer
	buf := make([]byte, 1500)
	for {
		n, err := q.Read(buf)
		in.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
	}
	require.True(t, bytes.Equal(back, in.Bytes()))
}

// writeBuffers sends more buffers than one writev takes, empty ones
// among them, and one larger than the socket's buffer, in order, and
// consumes them all.
func TestQuietConnWriteBuffers(t *testing.T) {
	q, far := tcpPair(t)
	var v net.Buffers
	var want []byte
	for i := range 2500 {
		b := bytes.Repeat([]byte{byte(i)}, i%7)
		if i == 1800 {
			b = bytes.Repeat([]byte{0xAB}, 4<<20)
		}
		v = append(v, b)
		want = append(want, b...)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(far)
		got <- b
	}()
	n, err := q.writeBuffers(&v)
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), n)
	require.Empty(t, v)
	require.NoError(t, q.CloseWrite())
	require.True(t, bytes.Equal(want, <-got))
}

func TestQuietConnErrorsAreTheSocketsOwn(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		q, _ := tcpPair(t)
		require.NoError(t, q.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
		_, err := q.Read(make([]byte, 10))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
		require.Equal(t, "read", oe.Op)
	})
	t.Run("closed here", func(t *testing.T) {
		q, _ := tcpPair(t)
		require.NoError(t, q.Close())
		_, err := q.Read(make([]byte, 10))
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = q.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)
	})
	t.Run("closed there", func(t *testing.T) {
		q, far := tcpPair(t)
		require.NoError(t, far.Close())
		_, err := q.Read(make([]byte, 10))
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("reset there", func(t *testing.T) {
		q, far := tcpPair(t)
		require.NoError(t, far.(*net.TCPConn).SetLinger(0))
		require.NoError(t, far.Close())
		// The reset arrives at some point: from then on a write fails
		// (EPIPE or ECONNRESET) instead of killing the process.
		require.Eventually(t, func() bool {
			_, err := q.Write(make([]byte, 1024))
			return err != nil
		}, 10*time.Second, time.Millisecond)
	})
}

func TestConsumeDropsWhatWasWritten(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sizes := rapid.SliceOfN(rapid.IntRange(0, 9), 0, 12).Draw(t, "sizes")
		var v net.Buffers
		var all []byte
		for i, s := range sizes {
			b := bytes.Repeat([]byte{byte(i)}, s)
			v = append(v, b)
			all = append(all, b...)
		}
		n := rapid.IntRange(0, len(all)).Draw(t, "n")
		consume(&v, int64(n))
		if len(v) > 0 {
			require.NotEmpty(t, v[0], "the next writev starts with a byte to write")
		}
		var rest []byte
		for _, b := range v {
			rest = append(rest, b...)
		}
		require.True(t, bytes.Equal(all[n:], rest), "left %q, want %q", rest, all[n:])
	})
}

// What a goroutine did before writing to a quiet socket happened before
// what a goroutine does after reading it at the other end, for the race
// detector as for the standard library's sockets: under -race, a report
// here fails the test.
func TestQuietConnOrdersWhatItCarries(t *testing.T) {
	q, far := tcpPair(t)
	qfar, ok := quiet(far).(*quietConn)
	require.True(t, ok)
	var handed []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 1)
		_, err := io.ReadFull(qfar, b)
		if err == nil {
			handed = append(handed, 2)
		}
	}()
	handed = append(handed, 1)
	_, err := q.Write([]byte{1})
	require.NoError(t, err)
	<-done
	require.Equal(t, []int{1, 2}, handed)
}

// A frame's write and its read at the far end, both through quietConn.
func BenchmarkQuietConnRoundTrip(b *testing.B) {
	q, far := tcpPair(b)
	qfar, ok := quiet(far).(*quietConn)
	require.True(b, ok)
	out, in := make([]byte, 200), make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(qfar, in); err != nil {
			b.Fatal(err)
		}
	}
}
