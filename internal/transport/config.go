package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
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
	// MaxConns caps the server's client connections: those whose hello
	// names no node. A connection counts once its hello is accepted, so
	// sockets that never complete a handshake take no place here (see
	// MaxHandshakes).
	MaxConns int
	// MaxPeerConns caps the server's peer connections (the hello names a
	// node, and VerifyPeer accepted it), apart from MaxConns: clients
	// filling their cap never lock the cluster's nodes out.
	MaxPeerConns int
	// IdleEvictAfter lets a client connection that has sent nothing for
	// this long, and has nothing in flight, be closed to make room for a
	// new client when MaxConns are open: idle sockets from many addresses
	// then cannot lock new clients out until IdleTimeout. Zero disables
	// it.
	IdleEvictAfter time.Duration
	// MaxConnsPerSource caps the client connections from one IP address,
	// so that one host cannot take every client place.
	MaxConnsPerSource int
	// MaxHandshakes caps the connections in their handshake at once. A
	// connection accepted beyond it closes the oldest one still in its
	// handshake, so a flood of silent sockets delays a real dialler by at
	// most its own round trip, never locks it out.
	MaxHandshakes int
	// MaxInFlight caps the requests one connection may have in flight on
	// the server; beyond it the server stops reading that connection. A
	// request is in flight until its answer is written to the socket.
	MaxInFlight int
	// MaxConnBytes caps the bytes one client connection holds in the
	// server: its requests being served (each counted at its own size or
	// at what the connection's answers have cost lately, whichever is
	// more) and its answers not yet written. At the cap the server stops
	// reading the connection until the writer drains below it, so a
	// client that sends and does not read is pushed back by TCP instead
	// of filling the node's memory.
	MaxConnBytes int
	// MaxPeerConnBytes is MaxConnBytes for peer connections, which carry
	// the replica traffic of many requests each.
	MaxPeerConnBytes int
	// MaxInFlightBytes is the server's budget for the bytes all client
	// connections hold together (as MaxConnBytes counts them). A request
	// read while the budget is spent is answered "overloaded" at once,
	// without being served.
	MaxInFlightBytes int64
	// MaxPeerInFlightBytes is the peers' own budget, apart from the
	// clients': a client flood never refuses replica traffic.
	MaxPeerInFlightBytes int64
	// VerifyPeer, if set, checks a hello that names a node: an error
	// refuses the connection as unauthorized. cert is the certificate the
	// far side proved it holds in the TLS handshake, nil without TLS.
	// ctx ends shortly before the handshake's deadline, so a check may
	// wait that long for what it needs to learn (a member that just
	// joined). Without it any connection naming a node is taken for that
	// peer.
	VerifyPeer func(ctx context.Context, node string, remote net.Addr, cert *x509.Certificate) error
	// Auth is the credential a pool's hellos carry (a client's token);
	// nil for none. It is never logged.
	Auth []byte
	// Authenticate, if set, checks the hello of a client (one naming no
	// node), with its certificate and credential, before the connection
	// is admitted: an error refuses it as unauthorized, saying why (never
	// quoting the credential). What it returns travels with every request
	// of the connection as Peer.Principal. It must be quick. Without it
	// every client is admitted and its hello's credential is only carried
	// in Peer.Auth.
	Authenticate func(peer Peer) (principal any, err error)
	// ServerTLS, if set, makes a server speak TLS: a connection's TLS
	// handshake comes first, within HandshakeTimeout, and the protocol's
	// own handshake runs inside it. A far side that does not start TLS is
	// answered, in plain text, with an error saying the node needs it.
	ServerTLS *tls.Config
	// ClientTLS, if set, makes a pool dial with TLS: it gives the
	// configuration of one dial to addr.
	ClientTLS func(addr string) (*tls.Config, error)
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
	// calls are spread over them. One by default: every call shares the
	// one connection, so concurrent frames leave in one write and arrive
	// in one read, where each of two connections carried half as many
	// per system call and per wake-up (see docs/PERFORMANCE.md). A frame
	// holds up the calls behind it on its connection for as long as it
	// takes to write (at most MaxFrame bytes); more connections only
	// spread that over fewer calls.
	ConnsPerAddr int
	// OnEvent, if set, is told about connection lifecycle events. It is
	// called synchronously and must be quick.
	OnEvent func(Event)
}

// DefaultConfig returns the defaults every field documents.
func DefaultConfig() Config {
	return Config{
		Cluster:              "cairn",
		MaxFrame:             wire.DefaultMaxFrame,
		MaxConns:             1024,
		MaxPeerConns:         256,
		MaxConnsPerSource:    256,
		MaxHandshakes:        1024,
		IdleEvictAfter:       5 * time.Second,
		MaxInFlight:          256,
		MaxConnBytes:         4 << 20,
		MaxPeerConnBytes:     16 << 20,
		MaxInFlightBytes:     256 << 20,
		MaxPeerInFlightBytes: 256 << 20,
		IdleTimeout:          2 * time.Minute,
		HandshakeTimeout:     2 * time.Second,
		DialTimeout:          2 * time.Second,
		WriteTimeout:         10 * time.Second,
		ConnsPerAddr:         1,
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
	if c.MaxPeerConns <= 0 {
		c.MaxPeerConns = d.MaxPeerConns
	}
	if c.MaxConnsPerSource <= 0 {
		c.MaxConnsPerSource = d.MaxConnsPerSource
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = d.MaxHandshakes
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.MaxConnBytes <= 0 {
		c.MaxConnBytes = d.MaxConnBytes
	}
	if c.MaxPeerConnBytes <= 0 {
		c.MaxPeerConnBytes = d.MaxPeerConnBytes
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = d.MaxInFlightBytes
	}
	if c.MaxPeerInFlightBytes <= 0 {
		c.MaxPeerInFlightBytes = d.MaxPeerInFlightBytes
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
	EventAccepted          EventKind = iota // a connection passed its handshake
	EventClosed                             // a connection closed
	EventRejectedLimit                      // refused: MaxConns client connections open already
	EventHandshakeFailed                    // wrong preamble, cluster, version or hello, or none in time
	EventProtocolError                      // a malformed or oversized frame closed a connection
	EventIdleTimeout                        // closed for completing no frame within IdleTimeout
	EventDialFailed                         // a pool could not connect or handshake
	EventRejectedPeerLimit                  // refused: MaxPeerConns peer connections open already
	EventRejectedSource                     // refused: MaxConnsPerSource client connections from its IP already
	EventHandshakeEvicted                   // closed in its handshake to make room (MaxHandshakes)
	EventPeerRefused                        // refused: VerifyPeer rejected the node its hello named
	EventOverloaded                         // a request answered "overloaded": the in-flight byte budget was spent
	EventPaused                             // reading a connection paused: it holds MaxConnBytes
	EventIdleEvicted                        // an idle client connection closed to make room for a new one (IdleEvictAfter)
	EventTLSFailed                          // the TLS handshake failed: no TLS, an unknown CA, no or a bad certificate
)

var eventNames = [...]string{"accepted", "closed", "rejected_limit", "handshake_failed", "protocol_error", "idle_timeout", "dial_failed",
	"rejected_peer_limit", "rejected_source", "handshake_evicted", "peer_refused", "overloaded", "paused", "idle_evicted", "tls_failed"}

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
	Node   string // the node the far side's hello named, once known ("" for clients)
	Err    error  // why, for failures and refusals
}

func (c Config) emit(kind EventKind, remote string, err error) {
	c.emitFor(kind, remote, "", err)
}

func (c Config) emitFor(kind EventKind, remote, node string, err error) {
	if c.OnEvent != nil {
		c.OnEvent(Event{Kind: kind, Remote: remote, Node: node, Err: err})
	}
}
