package transport

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// The request path's bodies are checked as they are decoded, not when the
// frame is parsed (wire.ParseFrame). These tests hold the transport to
// what PROTOCOL.md promises all the same: a body that breaks the framing
// rules closes its connection with a protocol error; a well-formed body of
// the wrong shape is answered with invalid_argument and the connection
// stays open.

func TestBrokenRequestBodyClosesTheConnection(t *testing.T) {
	ts := startServer(t, nil)
	p := newPool(t, nil)
	for name, body := range map[string][]byte{
		"bin of 4 GiB":     {0x81, 0xa3, 'k', 'e', 'y', 0xc6, 0xff, 0xff, 0xff, 0xff},
		"extension":        {0x81, 0xa3, 'k', 'e', 'y', 0xd4, 0x01, 0x01},
		"trailing bytes":   {0x80, 0xc0},
		"unknown code":     {0xc1},
		"truncated bucket": {0x81, 0xa6, 'b', 'u', 'c', 'k', 'e', 't', 0xa5, 'b'},
	} {
		t.Run(name, func(t *testing.T) {
			c := handshaken(t, ts.addr())
			frame := append(frameHeader(uint32(3+len(body))), 0x93, 0x07, byte(wire.TypeGet))
			_, err := c.Write(append(frame, body...))
			require.NoError(t, err)
			requireRefusal(t, c, cairn.ErrProtocol)
			got, err := get(t.Context(), p, ts.addr(), "still-served")
			require.NoError(t, err)
			require.Equal(t, "b/still-served", got)
		})
	}
}

func TestWrongShapedRequestBodyIsAnswered(t *testing.T) {
	ts := startServer(t, nil)
	c := handshaken(t, ts.addr())
	for id, body := range [][]byte{
		{0x81, 0xa6, 'b', 'u', 'c', 'k', 'e', 't', 0x05},        // a number for a string
		{0x81, 0xa4, 'o', 'p', 't', 's', 0x91, 0x01},            // an array for a map
		{0x81, 0xa4, 'o', 'p', 't', 's', 0x81, 0xa1, 'r', 0xff}, // fine: r = -1
	} {
		frame := append(frameHeader(uint32(3+len(body))), 0x93, byte(id+1), byte(wire.TypeGet))
		_, err := c.Write(append(frame, body...))
		require.NoError(t, err)
		f := readFrame(t, c)
		require.Equal(t, uint64(id+1), f.ID)
		if id == 2 {
			require.Equal(t, wire.TypeGetResp, f.Type, "a well-formed request is served")
			continue
		}
		require.Equal(t, wire.TypeError, f.Type)
		var e wire.ErrorResp
		require.NoError(t, wire.Decode(f.Body, &e))
		require.ErrorIs(t, e.Err(), cairn.ErrInvalidArgument)
	}
}

// fakeServer accepts one connection (and closes its listener), completes
// the handshake, and answers the requests that come with the given bodies,
// one each, under the answer's type. closed is closed once the client has
// closed the connection.
func fakeServer(t *testing.T, bodies ...[]byte) (addr string, closed <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		_ = ln.Close()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(wire.Preamble[:]); err != nil || wire.ReadPreamble(c) != nil {
			return
		}
		hello, err := wire.ReadFrame(c, wire.DefaultMaxFrame)
		if err != nil {
			return
		}
		f, _ := wire.ParseFrame(hello)
		ok, _ := wire.AppendFrame(nil, f.ID, wire.TypeHelloOK, wire.HelloOK{Node: "fake", Version: wire.Version}, wire.DefaultMaxFrame)
		if _, err := c.Write(ok); err != nil {
			return
		}
		for _, body := range bodies {
			req, err := wire.ReadFrame(c, wire.DefaultMaxFrame)
			if err != nil {
				return
			}
			f, _ = wire.ParseFrame(req)
			answer := append(frameHeader(uint32(3+len(body))), 0x93, byte(f.ID), byte(f.Type+1))
			if _, err := c.Write(append(answer, body...)); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, c)
	}()
	t.Cleanup(func() { <-done })
	return ln.Addr().String(), done
}

func TestBrokenAnswerBodyFailsTheConnection(t *testing.T) {
	addr, closed := fakeServer(t, []byte{0x81, 0xa8, 's', 'i', 'b', 'l', 'i', 'n', 'g', 's', 0xdd, 0xff, 0xff, 0xff, 0xff})
	p := newPool(t, nil)
	_, err := get(t.Context(), p, addr, "k")
	require.ErrorIs(t, err, cairn.ErrProtocol)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the client kept a connection that sent a broken answer")
	}
}

func TestWrongShapedAnswerKeepsTheConnection(t *testing.T) {
	good, err := wire.AppendFrame(nil, 0, wire.TypeGetResp,
		wire.GetResp{Found: true, Siblings: []wire.Sibling{{Value: []byte("v")}}}, wire.DefaultMaxFrame)
	require.NoError(t, err)
	addr, _ := fakeServer(t, []byte{0x81, 0xa5, 'f', 'o', 'u', 'n', 'd', 0x07}, good[7:])
	p := newPool(t, func(c *Config) { c.ConnsPerAddr = 1 })
	_, err = get(t.Context(), p, addr, "k")
	require.ErrorIs(t, err, cairn.ErrProtocol, "an answer that does not decode is the server's protocol error")
	// The fake server accepts one connection only: the second answer can
	// only come over the first connection.
	got, err := get(t.Context(), p, addr, "k")
	require.NoError(t, err)
	require.Equal(t, "v", got)
}
