package transport

import "sync/atomic"

// Traffic counts the bytes a Server or a Pool moved over its connections
// since it was made, so that a node can say how many bytes a request costs
// it. Only frames are counted, in both directions alike: the handshake of
// a connection (a few dozen bytes, once) is not.
type Traffic struct {
	sent     atomic.Uint64
	received atomic.Uint64
}

// frameLengthPrefix is the length field in front of every frame's payload
// (package wire's framing).
const frameLengthPrefix = 4

// Sent is the bytes of frames written.
func (t *Traffic) Sent() uint64 { return t.sent.Load() }

// Received is the bytes of frames read.
func (t *Traffic) Received() uint64 { return t.received.Load() }

func (t *Traffic) frameReceived(payload []byte) {
	t.received.Add(uint64(len(payload)) + frameLengthPrefix)
}

// Traffic is what the server's connections have moved, clients and peers
// alike.
func (s *Server) Traffic() *Traffic { return &s.traffic }

// Traffic is what the pool's connections have moved.
func (p *Pool) Traffic() *Traffic { return &p.traffic }
