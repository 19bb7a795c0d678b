package transport

import (
	"time"

	"github.com/cairnkv/cairn/internal/wire"
)

// Config configures a Server or a Pool. Start from DefaultConfig.
type Config struct {
	// Cluster is the cluster name a handshake must carry.
	Cluster string
	// Node is the name this side gives in its handshake: a node's own name
	// for peer connections, empty for clients.
	Node string
	// MaxFrame bounds a frame's length in bytes, in both directions.
	MaxFrame int
	// MaxConns caps the server's open connections.
	MaxConns int
	// MaxInFlight caps the requests one connection may have in flight on
	// the server; beyond it the server stops reading that connection.
	MaxInFlight int
	// IdleTimeout closes a server connection that completes no frame for
	// this long. A pool replaces its connections after half of it unused,
	// so they are never the ones the server is about to close.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the preamble and hello of a new connection.
	HandshakeTimeout time.Duration
	// DialTimeout bounds a pool's connect (a call's own deadline may be
	// shorter).
	DialTimeout time.Duration
	// WriteTimeout bounds writing a batch of frames to a connection; a peer
	// that stops reading for longer is disconnected.
	WriteTimeout time.Duration
	// ConnsPerAddr is how many connections a pool keeps to one address;
	// calls are spread over them.
	ConnsPerAddr int
	// OnEvent, if set, is told about connection lifecycle events. It is
	// called synchronously and must be quick.
	OnEvent func(Event)
}

// DefaultConfig returns the defaults every field documents.
func DefaultConfig() Config {
	return Config{
		Cluster:          "cairn",
		MaxFrame:         wire.DefaultMaxFrame,
		MaxConns:         1024,
		MaxInFlight:      256,
		IdleTimeout:      2 * time.Minute,
		HandshakeTimeout: 5 * time.Second,
		DialTimeout:      2 * time.Second,
		WriteTimeout:     10 * time.Second,
		ConnsPerAddr:     2,
	}
}

// withDefaults fills zero fields, so a partly filled Config still works.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrame <= 0 {
		c.MaxFrame = d.MaxFrame
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.ConnsPerAddr <= 0 {
		c.ConnsPerAddr = d.ConnsPerAddr
	}
	return c
}

// EventKind names a connection lifecycle event.
type EventKind int

// The events a Server or Pool reports.
const (
	EventAccepted        EventKind = iota // a connection passed its handshake
	EventClosed                           // a connection closed
	EventRejectedLimit                    // refused: MaxConns open already
	EventHandshakeFailed                  // wrong preamble, cluster, version or hello
	EventProtocolError                    // a malformed or oversized frame closed a connection
	EventIdleTimeout                      // closed for completing no frame within IdleTimeout
	EventDialFailed                       // a pool could not connect or handshake
)

var eventNames = [...]string{"accepted", "closed", "rejected_limit", "handshake_failed", "protocol_error", "idle_timeout", "dial_failed"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one connection lifecycle event.
type Event struct {
	Kind   EventKind
	Remote string // the far side's address
	Err    error  // why, for failures
}

func (c Config) emit(kind EventKind, remote string, err error) {
	if c.OnEvent != nil {
		c.OnEvent(Event{Kind: kind, Remote: remote, Err: err})
	}
}
