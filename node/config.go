package node

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cairnkv/cairn/internal/buckets"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/aae"
	"github.com/cairnkv/cairn/node/handoff"
	"github.com/cairnkv/cairn/node/transfer"
	"github.com/cairnkv/cairn/ring"
	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Config describes one node. Build it from DefaultConfig and change what you
// need; Validate reports every problem at once.
type Config struct {
	// Name identifies the node in the cluster; it must stay the same across
	// restarts of the same data directory.
	Name string `yaml:"name"`
	// DataDir holds the node's pebble database.
	DataDir string `yaml:"data"`
	// Listen is the data address (clients and peers), host:port.
	Listen string `yaml:"listen"`
	// Gossip is the membership address, host:port.
	Gossip string `yaml:"gossip"`
	// Admin is the HTTP address for /metrics, /healthz, /readyz and pprof.
	// Empty disables it.
	Admin string `yaml:"admin"`
	// Advertise is the host (name or IP) peers and clients should use to
	// reach this node, when it differs from the listen and gossip hosts
	// (bound to 0.0.0.0, behind NAT, in a container). Empty: the listen
	// host, or when that is unspecified a private IP of the machine.
	Advertise string `yaml:"advertise"`
	// Join lists gossip addresses of nodes to join at start. A node that
	// is not yet in the ring state joins as joining: it owns partitions
	// only once their data was streamed to it (see Transfer), unless
	// Bootstrap is set.
	Join []string `yaml:"join"`
	// Bootstrap marks a node of a cluster being created: it takes its
	// share of partitions at once, with no transfer, since there is no
	// data to move. `cairn dev` sets it for the nodes it starts. Never set
	// it on a node joining a cluster that holds data: its keys would read
	// as not found until anti-entropy copied them.
	Bootstrap bool `yaml:"bootstrap"`
	// Replace names a member this node, joining, takes the place of from
	// its start (what `cairn replace OLD NEW` does for a node already
	// joining): exactly that member's partitions move to it, and the
	// member is removed once they have. Ignored once the node is in the
	// ring state, and with Bootstrap.
	Replace string `yaml:"replace"`
	// Cluster is the cluster name every connection's handshake must carry.
	Cluster string `yaml:"cluster"`

	// Partitions is Q, the fixed number of ring partitions (power of two).
	Partitions int `yaml:"partitions"`
	// N is the default replication factor.
	N int `yaml:"n"`
	// R, W, PR, PW, DW are the default quorums (numbers; 0 for PR/PW/DW
	// means no constraint).
	R  int `yaml:"r"`
	W  int `yaml:"w"`
	PR int `yaml:"pr"`
	PW int `yaml:"pw"`
	DW int `yaml:"dw"`
	// RequestTimeout is the deadline of a request that names none.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxRequestTimeout caps the deadline a request may ask for.
	MaxRequestTimeout time.Duration `yaml:"max_request_timeout"`

	// MaxKeySize and MaxValueSize bound keys and values in bytes.
	MaxKeySize   int `yaml:"max_key_size"`
	MaxValueSize int `yaml:"max_value_size"`
	// SiblingLimit bounds the siblings a client write may leave an
	// object with: a put or delete that would grow an object past it is
	// refused (invalid_argument) and changes nothing, so an application
	// that writes without contexts is told to merge before it can no
	// longer read or replicate the object. Writes that do not grow the
	// object (a put with a context that collapses siblings) always pass,
	// and replication, read repair, handoff and anti-entropy never refuse
	// a merge: nothing is ever dropped because of the limit.
	SiblingLimit int `yaml:"sibling_limit"`
	// MaxObjectSize bounds, in bytes, the encoded object a client write may
	// leave, the same way. 0 means 4 x MaxValueSize. The frame limit grows
	// with it, so that an object a client write made can always be
	// replicated and read.
	MaxObjectSize int `yaml:"max_object_size"`
	// MaxHintBytesPerOwner caps the bytes (keys and values) of the hints
	// this node keeps for one unreachable owner; MaxHintBytes caps those it
	// keeps for every owner together (0: no node-wide cap). A hinted write
	// that would grow past either is refused "overloaded" and changes
	// nothing: the coordinator asks the next fallback, or the write fails
	// W with the refusal named. Hints are never dropped to make room (a
	// hint may be one of the only copies of an acknowledged write), and
	// writes that do not grow the hints, handoff and anti-entropy never
	// refuse. Default 1 GiB per owner: what the owner's default handoff
	// pace (16 MiB/s) takes back in about a minute.
	MaxHintBytesPerOwner int64 `yaml:"max_hint_bytes_per_owner"`
	MaxHintBytes         int64 `yaml:"max_hint_bytes"`
	// NoSyncWrites lets writes with DW=0 skip fsync. Off by default: every
	// acknowledged write is on disk.
	NoSyncWrites bool `yaml:"no_sync_writes"`

	// MaxConns caps open client connections. Connections from other nodes
	// have places of their own (MaxPeerConns), so clients filling theirs
	// never cut the cluster's nodes off from each other.
	MaxConns int `yaml:"max_conns"`
	// MaxPeerConns caps open connections from other nodes of the cluster.
	MaxPeerConns int `yaml:"max_peer_conns"`
	// MaxConnsPerSource caps the client connections from one IP address,
	// so that one host cannot take every client place. Behind a proxy or
	// NAT every client has the proxy's address: raise it there.
	MaxConnsPerSource int `yaml:"max_conns_per_source"`
	// HandshakeTimeout closes a connection whose hello has not arrived in
	// this long; until then it takes no client's place.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// IdleTimeout closes connections that send nothing for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnBytes caps the bytes one client connection holds in the
	// node: its requests being served and its answers not yet written.
	// At the cap the node stops reading the connection until the client
	// has read enough, so a client that sends without reading is pushed
	// back by TCP. A peer connection may hold four times as much.
	MaxConnBytes int `yaml:"max_conn_bytes"`
	// MaxInFlightBytes caps the bytes all client connections hold
	// together; a request read beyond it is answered "overloaded" at once
	// and not served.
	MaxInFlightBytes int64 `yaml:"max_inflight_bytes"`
	// MaxPeerInFlightBytes is the same budget for connections from other
	// nodes, apart from the clients': a client flood never refuses
	// replica traffic.
	MaxPeerInFlightBytes int64 `yaml:"max_peer_inflight_bytes"`
	// VerifyPeerAddress refuses a connection whose hello names a member
	// when it does not come from an address that member advertises (its
	// data or gossip host). Until connections carry TLS identities this
	// is what keeps a client from passing for a node. Turn it off only
	// where nodes reach each other through address translation.
	VerifyPeerAddress bool `yaml:"verify_peer_address"`

	// CertsDir holds the node's TLS material: ca.crt (the CA bundle),
	// node.crt and node.key (`cairn cert create-node`). When set, the
	// data port speaks only TLS 1.3 with mutual authentication, a peer is
	// believed to be the node its certificate names (VerifyPeerAddress is
	// then not needed), and the files are read again when they change or
	// on SIGHUP, so certificates rotate without a restart. Empty: plain
	// TCP.
	CertsDir string `yaml:"certs_dir"`
	// TokenOnlyClients lets clients connect to a TLS node without a
	// client certificate, proving who they are with a user's token in the
	// hello instead (TLS still encrypts the connection and authenticates
	// the node). Without it a token is only taken beside a certificate.
	// Nodes always need their certificate. No effect without CertsDir.
	TokenOnlyClients bool `yaml:"token_only_clients"`
	// GossipKeyFile encrypts gossip (memberlist's keyring, AES-GCM): a
	// JSON array of base64 keys of 16, 24 or 32 bytes, the one in use
	// first (`cairn keyring generate --out FILE`). A node without one of
	// the cluster's keys cannot join it. `cairn keyring` changes the keys
	// of a live cluster and the node rewrites the file. Empty: gossip in
	// plain text.
	GossipKeyFile string `yaml:"gossip_key_file"`
	// Insecure lets a node whose data or gossip address is reachable from
	// other machines (anything but loopback) run without CertsDir or
	// GossipKeyFile. Without it such a node refuses to start: anyone who
	// reached its ports could read and write every key, or join the
	// cluster and be given partitions. Loopback-only nodes need neither.
	Insecure bool `yaml:"insecure"`

	// GossipProfile picks memberlist's timings: "lan" (the default:
	// failures detected in about 5 s) or "local" (loopback clusters such as
	// `cairn dev`: about 2 s, more gossip traffic).
	GossipProfile string `yaml:"gossip_profile"`
	// RejoinInterval is how often the node re-joins seeds and members it
	// does not see alive, which is what heals a partition that outlasted
	// memberlist's dead-node timeout.
	RejoinInterval time.Duration `yaml:"rejoin_interval"`

	// Handoff paces hinted handoff.
	Handoff handoff.Config `yaml:"handoff"`
	// HintedHandoff delivers the hints this node keeps to their owners when
	// they are back. Default true. Off, fallbacks still store hints but
	// never hand them back: for tests of anti-entropy, or an operator
	// holding catch-up traffic back for a while.
	HintedHandoff bool `yaml:"hinted_handoff"`
	// ReadRepair sends the merge of a get to every replica whose copy was
	// missing or behind. Default true; off, only hinted handoff and
	// anti-entropy repair replicas.
	ReadRepair bool `yaml:"read_repair"`
	// ReadAll makes a get ask every replica of the key rather than only as
	// many as R (and PR) need, so that read repair checks every copy on
	// every get. Default false: two messages and a replica read fewer per
	// get, and anti-entropy repairs what a get does not look at.
	ReadAll bool `yaml:"read_all"`
	// AAE configures active anti-entropy (Merkle-tree exchanges).
	AAE aae.Config `yaml:"aae"`
	// Transfer paces ownership transfer during membership changes.
	Transfer transfer.Config `yaml:"transfer"`
	// Reap paces the removal of tombstones past their bucket's delete
	// grace (reap.go).
	Reap ReapConfig `yaml:"reap"`

	// Logger receives the node's logs; nil means no logs.
	Logger *zap.Logger `yaml:"-"`

	// tuneMemberlist lets in-process tests shorten gossip timings.
	tuneMemberlist func(*memberlist.Config)
	// wallClock, when set, is the wall clock write stamps start from
	// (the hybrid logical clock's physical part), in place of time.Now:
	// in-process tests give nodes clocks that disagree.
	wallClock func() time.Time
	// refusePeer lets in-process tests cut the data plane between nodes: a
	// request from a peer it names is refused as unavailable, as if the
	// network had dropped it.
	refusePeer func(peer string) bool
}

// DefaultConfig returns the configuration of a node that serves on the
// default local ports (node n1 of `cairn dev`).
func DefaultConfig() Config {
	t := transport.DefaultConfig()
	return Config{
		Name:                 "n1",
		DataDir:              "data/n1",
		Listen:               "127.0.0.1:7101",
		Gossip:               "127.0.0.1:7201",
		Admin:                "127.0.0.1:7301",
		Cluster:              "cairn",
		Partitions:           ring.DefaultPartitions,
		N:                    3,
		R:                    2,
		W:                    2,
		RequestTimeout:       2 * time.Second,
		MaxRequestTimeout:    60 * time.Second,
		MaxKeySize:           64 << 10,
		MaxValueSize:         8 << 20,
		SiblingLimit:         100,
		MaxHintBytesPerOwner: 1 << 30,
		GossipProfile:        "lan",
		Handoff:              handoff.DefaultConfig(),
		HintedHandoff:        true,
		ReadRepair:           true,
		AAE:                  aae.DefaultConfig(),
		Transfer:             transfer.DefaultConfig(),
		Reap:                 DefaultReapConfig(),
		RejoinInterval:       10 * time.Second,
		MaxConns:             t.MaxConns,
		MaxPeerConns:         t.MaxPeerConns,
		MaxConnsPerSource:    t.MaxConnsPerSource,
		HandshakeTimeout:     t.HandshakeTimeout,
		IdleTimeout:          t.IdleTimeout,
		MaxConnBytes:         t.MaxConnBytes,
		MaxInFlightBytes:     t.MaxInFlightBytes,
		MaxPeerInFlightBytes: t.MaxPeerInFlightBytes,
		VerifyPeerAddress:    true,
	}
}

// MaxSiblingLimit is the highest sibling limit a node (or a bucket)
// accepts: an object at the limit, even doubled by a merge with a copy at
// the limit, stays far within the element limit of a message (about 5,000
// siblings), so it can always be replicated and read.
const MaxSiblingLimit = buckets.MaxSiblingLimit

// maxObjectSizeLimit bounds MaxObjectSize, and with it the frame.
const maxObjectSizeLimit = 256 << 20

// objectSizeLimit is MaxObjectSize with its default applied.
func (c Config) objectSizeLimit() int {
	if c.MaxObjectSize > 0 {
		return c.MaxObjectSize
	}
	return 4 * c.MaxValueSize
}

// maxFrame is the frame limit of the node's connections, both ways: room
// for a message carrying the largest object a client write may leave (a
// replica put, a get's answer), with its key and a margin.
func (c Config) maxFrame() int {
	return max(wire.DefaultMaxFrame, c.objectSizeLimit()+4*c.MaxKeySize+1<<20)
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" || strings.ContainsAny(c.Name, " \t\n/") {
		bad("name %q: must be non-empty with no spaces or slashes", c.Name)
	}
	if c.DataDir == "" {
		bad("data: a directory is required")
	}
	for _, a := range []struct{ name, addr string }{{"listen", c.Listen}, {"gossip", c.Gossip}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad("%s %q: want host:port", a.name, a.addr)
		}
	}
	if c.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			bad("admin %q: want host:port", c.Admin)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("join %q: want host:port", j)
		}
	}
	if c.Cluster == "" {
		bad("cluster: a name is required")
	}
	switch {
	case c.Replace == "":
	case c.Replace == c.Name:
		bad("replace %q: a node cannot take its own place", c.Replace)
	case len(c.Join) == 0 || c.Bootstrap:
		bad("replace %q: a node takes a member's place by joining its cluster: give --join and not --bootstrap", c.Replace)
	}
	if err := c.checkSecure(); err != nil {
		errs = append(errs, err)
	}
	if c.Partitions < 1 || c.Partitions&(c.Partitions-1) != 0 || c.Partitions > 1<<16 {
		bad("partitions %d: must be a power of two between 1 and 65536", c.Partitions)
	}
	if c.N < 1 || c.N > 16 {
		bad("n %d: must be between 1 and 16", c.N)
	}
	for _, q := range []struct {
		name     string
		v, least int
	}{{"r", c.R, 1}, {"w", c.W, 1}, {"pr", c.PR, 0}, {"pw", c.PW, 0}, {"dw", c.DW, 0}} {
		if q.v < q.least || q.v > c.N {
			bad("%s %d: must be between %d and n (%d)", q.name, q.v, q.least, c.N)
		}
	}
	if c.RequestTimeout <= 0 {
		bad("request_timeout %v: must be positive", c.RequestTimeout)
	}
	if c.MaxRequestTimeout < c.RequestTimeout {
		bad("max_request_timeout %v: must be at least request_timeout (%v)", c.MaxRequestTimeout, c.RequestTimeout)
	}
	if c.MaxKeySize < 1 || c.MaxKeySize > 1<<20 {
		bad("max_key_size %d: must be between 1 and 1 MiB", c.MaxKeySize)
	}
	if c.MaxValueSize < 0 || c.MaxValueSize > 64<<20 {
		bad("max_value_size %d: must be between 0 and 64 MiB", c.MaxValueSize)
	}
	if c.SiblingLimit < 1 || c.SiblingLimit > MaxSiblingLimit {
		bad("sibling_limit %d: must be between 1 and %d", c.SiblingLimit, MaxSiblingLimit)
	}
	if c.MaxObjectSize != 0 && (c.MaxObjectSize < c.MaxValueSize || c.MaxObjectSize > maxObjectSizeLimit) {
		bad("max_object_size %d: must be 0 (4 x max_value_size), or between max_value_size (%d) and 256 MiB", c.MaxObjectSize, c.MaxValueSize)
	}
	if c.MaxHintBytesPerOwner < 1 {
		bad("max_hint_bytes_per_owner %d: must be positive", c.MaxHintBytesPerOwner)
	}
	if c.MaxHintBytes != 0 && c.MaxHintBytes < c.MaxHintBytesPerOwner {
		bad("max_hint_bytes %d: must be 0 (no node-wide cap) or at least max_hint_bytes_per_owner (%d)", c.MaxHintBytes, c.MaxHintBytesPerOwner)
	}
	if c.GossipProfile != "lan" && c.GossipProfile != "local" {
		bad("gossip_profile %q: want lan or local", c.GossipProfile)
	}
	if c.RejoinInterval <= 0 {
		bad("rejoin_interval %v: must be positive", c.RejoinInterval)
	}
	errs = append(errs, c.Handoff.Validate(), c.AAE.Validate(), c.Transfer.Validate(), c.Reap.Validate())
	for _, v := range []struct {
		name string
		n    int
	}{{"max_conns", c.MaxConns}, {"max_peer_conns", c.MaxPeerConns}, {"max_conns_per_source", c.MaxConnsPerSource}} {
		if v.n < 1 {
			bad("%s %d: must be at least 1", v.name, v.n)
		}
	}
	if c.HandshakeTimeout <= 0 {
		bad("handshake_timeout %v: must be positive", c.HandshakeTimeout)
	}
	if c.IdleTimeout <= 0 {
		bad("idle_timeout %v: must be positive", c.IdleTimeout)
	}
	if c.MaxConnBytes < 64<<10 {
		bad("max_conn_bytes %d: must be at least 64 KiB", c.MaxConnBytes)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"max_inflight_bytes", c.MaxInFlightBytes}, {"max_peer_inflight_bytes", c.MaxPeerInFlightBytes}} {
		if v.n < int64(c.MaxConnBytes) || v.n < 1<<20 {
			bad("%s %d: must be at least 1 MiB and at least max_conn_bytes (%d)", v.name, v.n, c.MaxConnBytes)
		}
	}
	return errors.Join(errs...)
}

// checkSecure refuses a node reachable from other machines that would run
// without TLS or without gossip encryption, unless Insecure says so.
func (c Config) checkSecure() error {
	if c.Insecure || (c.CertsDir != "" && c.GossipKeyFile != "") {
		return nil
	}
	for _, a := range []struct{ flag, addr string }{{"listen", c.Listen}, {"gossip", c.Gossip}} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil || loopbackHost(host) {
			continue
		}
		var missing []string
		if c.CertsDir == "" {
			missing = append(missing, "TLS (--certs-dir: `cairn cert create-ca`, `cairn cert create-node`)")
		}
		if c.GossipKeyFile == "" {
			missing = append(missing, "gossip encryption (--gossip-key-file: `cairn keyring generate --out FILE`)")
		}
		return fmt.Errorf("--%s %s is reachable from other machines, and this node has no %s: "+
			"anyone reaching it could read and write every key or join the cluster. Give them (docs/SECURITY.md), "+
			"listen on 127.0.0.1, or pass --insecure to run without them", a.flag, a.addr, strings.Join(missing, " and no "))
	}
	return nil
}

// loopbackHost reports whether host can only be reached from this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
