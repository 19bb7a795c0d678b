package client

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cairnkv/cairn"
)

// Routing says which node a call is sent to.
type Routing int

const (
	// TokenAware (the default) sends each call straight to a replica of
	// its key, computed from the client's own copy of the ring, so the
	// node that receives it coordinates it without a forwarding hop. It
	// falls back to any live node, then to the seeds.
	TokenAware Routing = iota
	// RoundRobin spreads calls over every live node in turn, ignoring
	// placement: the node that receives a write it does not hold forwards
	// it. For comparison with TokenAware, and for keys too hot for their
	// replicas alone.
	RoundRobin
	// SeedsOnly talks to the seeds only, first one first, and never
	// learns the other nodes' addresses. For one-shot tools (the cairn
	// CLI), a load balancer in front of the cluster, or nodes whose
	// addresses the client cannot reach.
	SeedsOnly
)

func (r Routing) String() string {
	switch r {
	case TokenAware:
		return "token-aware"
	case RoundRobin:
		return "round-robin"
	case SeedsOnly:
		return "seeds-only"
	}
	return fmt.Sprintf("Routing(%d)", int(r))
}

// Config configures a Client. Zero fields take the defaults documented on
// each field (DefaultConfig returns them).
type Config struct {
	// Seeds are data addresses (host:port) of cluster nodes. At least
	// one; the client learns the others from them (unless SeedsOnly).
	Seeds []string
	// Cluster is the cluster name the nodes were started with. Default
	// "cairn".
	Cluster string
	// DialTimeout bounds connecting to a node, handshake included. A
	// node that is paused or behind a partition that drops packets costs
	// a call routed to it up to this long before the call moves on, until
	// gossip marks the node down (2 to 5 s): keep it short on a LAN.
	// Default 2s.
	DialTimeout time.Duration
	// RequestTimeout is the deadline of a call whose context has none.
	// Default 5s.
	RequestTimeout time.Duration

	// TLS, if set, is used for every connection, for nodes started with
	// --certs-dir: it must hold the cluster's CA and a client
	// certificate. ServerName is set to the dialled host when empty.
	// TLSFromCertsDir builds it from a directory made with `cairn cert`.
	// Nil: plain TCP.
	TLS *tls.Config

	// Token is a user's token (`cairn user add --token`), presented in
	// every connection's hello: the connection then acts as that user,
	// whatever certificate it presents. A node without TLS ignores it.
	// Empty: the certificate's user.
	Token string

	// Routing picks the node each call goes to. Default TokenAware.
	Routing Routing
	// RingRefreshInterval is how often the client re-reads the ring and
	// the members' liveness from a node. Besides it, a refresh follows at
	// once when an answer carries another ring version or a node refuses
	// a connection. Default 1s; ignored with SeedsOnly.
	RingRefreshInterval time.Duration
	// NodeBackoff is how long a node that refused a connection is
	// skipped; it doubles with each consecutive refusal up to
	// MaxNodeBackoff and resets when the node answers. Defaults 250ms and
	// 5s.
	NodeBackoff    time.Duration
	MaxNodeBackoff time.Duration
	// ConnsPerNode is how many connections the client keeps to each node;
	// each carries any number of calls at once. Default 1: the calls of
	// all the client's goroutines then share one connection, and the
	// frames that meet there go out in one write and are read in one
	// read on each side. More spread a large value's hold-up over fewer
	// calls, at more system calls per request.
	ConnsPerNode int

	// Retry says when a failed call is tried again. See RetryPolicy.
	Retry RetryPolicy
	// Resolver merges the siblings of a key for Get and Update unless a
	// call names its own (WithResolver). Default none: Get returns the
	// siblings, and Update refuses a key that has several.
	Resolver Resolver
}

// RetryPolicy bounds retries. A call is retried only when that cannot
// apply a write twice: a Get on another node after a node failed or did
// not answer in time; a Put or Delete when it never reached a node (the
// connection could not be made) or a node refused it as overloaded (it
// refuses before doing anything). Redirects after a refused
// connection are free; retries of a call that reached a node spend the
// budget, so a struggling cluster never sees more than about BudgetRatio
// extra load from retries.
type RetryPolicy struct {
	// MaxAttempts is how many times a Get may be asked, or a write
	// refused as overloaded be sent, the first included. 1 disables
	// these retries. Default 3.
	MaxAttempts int
	// Backoff is the first pause before a retry; it doubles per retry up
	// to MaxBackoff, with full jitter. Defaults 10ms and 250ms.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// BudgetRatio is the retries allowed per call, on average. Default
	// 0.1 (10%).
	BudgetRatio float64
	// BudgetPerSecond is a floor of retries allowed per second whatever
	// the call rate, so a quiet client can still retry. Default 10.
	BudgetPerSecond float64
}

// DefaultConfig returns every default, with the seed of a local `cairn dev`
// cluster.
func DefaultConfig() Config {
	return Config{
		Seeds:               []string{"127.0.0.1:7101"},
		Cluster:             "cairn",
		DialTimeout:         2 * time.Second,
		RequestTimeout:      5 * time.Second,
		Routing:             TokenAware,
		RingRefreshInterval: time.Second,
		NodeBackoff:         250 * time.Millisecond,
		MaxNodeBackoff:      5 * time.Second,
		ConnsPerNode:        1,
		Retry: RetryPolicy{
			MaxAttempts:     3,
			Backoff:         10 * time.Millisecond,
			MaxBackoff:      250 * time.Millisecond,
			BudgetRatio:     0.1,
			BudgetPerSecond: 10,
		},
	}
}

// withDefaults fills zero fields (Seeds excepted).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Cluster == "" {
		c.Cluster = d.Cluster
	}
	fill(&c.DialTimeout, d.DialTimeout)
	fill(&c.RequestTimeout, d.RequestTimeout)
	fill(&c.RingRefreshInterval, d.RingRefreshInterval)
	fill(&c.NodeBackoff, d.NodeBackoff)
	fill(&c.MaxNodeBackoff, d.MaxNodeBackoff)
	fill(&c.Retry.Backoff, d.Retry.Backoff)
	fill(&c.Retry.MaxBackoff, d.Retry.MaxBackoff)
	if c.ConnsPerNode == 0 {
		c.ConnsPerNode = d.ConnsPerNode
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = d.Retry.MaxAttempts
	}
	if c.Retry.BudgetRatio == 0 {
		c.Retry.BudgetRatio = d.Retry.BudgetRatio
	}
	if c.Retry.BudgetPerSecond == 0 {
		c.Retry.BudgetPerSecond = d.Retry.BudgetPerSecond
	}
	return c
}

// Validate reports every problem with the configuration at once, as an
// error wrapping ErrInvalidArgument. Zero fields are valid: they take
// their defaults.
func (c Config) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if len(c.Seeds) == 0 {
		bad("seeds: at least one seed address is required")
	}
	for _, s := range c.Seeds {
		if host, port, err := net.SplitHostPort(s); err != nil || host == "" || port == "" {
			bad("seed %q: want host:port", s)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial_timeout", c.DialTimeout}, {"request_timeout", c.RequestTimeout},
		{"ring_refresh_interval", c.RingRefreshInterval}, {"node_backoff", c.NodeBackoff},
		{"max_node_backoff", c.MaxNodeBackoff}, {"retry.backoff", c.Retry.Backoff},
		{"retry.max_backoff", c.Retry.MaxBackoff},
	} {
		if d.v < 0 {
			bad("%s %v: must not be negative", d.name, d.v)
		}
	}
	if c.NodeBackoff > 0 && c.MaxNodeBackoff > 0 && c.MaxNodeBackoff < c.NodeBackoff {
		bad("max_node_backoff %v: must be at least node_backoff (%v)", c.MaxNodeBackoff, c.NodeBackoff)
	}
	if c.Retry.Backoff > 0 && c.Retry.MaxBackoff > 0 && c.Retry.MaxBackoff < c.Retry.Backoff {
		bad("retry.max_backoff %v: must be at least retry.backoff (%v)", c.Retry.MaxBackoff, c.Retry.Backoff)
	}
	if c.Routing < TokenAware || c.Routing > SeedsOnly {
		bad("routing %d: want TokenAware, RoundRobin or SeedsOnly", int(c.Routing))
	}
	if c.ConnsPerNode < 0 || c.ConnsPerNode > 64 {
		bad("conns_per_node %d: must be between 1 and 64", c.ConnsPerNode)
	}
	if c.Retry.MaxAttempts < 0 || c.Retry.MaxAttempts > 16 {
		bad("retry.max_attempts %d: must be between 1 and 16", c.Retry.MaxAttempts)
	}
	if c.Retry.BudgetRatio < 0 || c.Retry.BudgetRatio > 1 {
		bad("retry.budget_ratio %v: must be between 0 and 1", c.Retry.BudgetRatio)
	}
	if c.Retry.BudgetPerSecond < 0 {
		bad("retry.budget_per_second %v: must not be negative", c.Retry.BudgetPerSecond)
	}
	if len(errs) == 0 {
		return nil
	}
	return cairn.InvalidArgument("client config: %s", strings.Join(errs, "; "))
}
