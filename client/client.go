package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// The errors a call can return, shared with the server (package cairn).
var (
	ErrNotFound        = cairn.ErrNotFound
	ErrQuorum          = cairn.ErrQuorum
	ErrTimeout         = cairn.ErrTimeout
	ErrInvalidArgument = cairn.ErrInvalidArgument
	ErrOverloaded      = cairn.ErrOverloaded
	ErrUnauthorized    = cairn.ErrUnauthorized
	ErrProtocol        = cairn.ErrProtocol
	ErrUnavailable     = cairn.ErrUnavailable
)

// QuorumError carries the counts of a request that did not reach its quorum.
type QuorumError = cairn.QuorumError

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	// Seeds are data addresses (host:port) of cluster nodes. At least one.
	Seeds []string
	// Cluster is the cluster name the nodes were started with. Default "cairn".
	Cluster string
	// DialTimeout bounds connecting and the handshake. Default 2s.
	DialTimeout time.Duration
	// RequestTimeout is the deadline of a call whose context has none.
	// Default 5s.
	RequestTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Cluster == "" {
		c.Cluster = "cairn"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	return c
}

// Client is safe for concurrent use. Close it when done.
type Client struct {
	cfg  Config
	pool *transport.Pool

	mu   sync.Mutex
	next int // seed to try first
}

// New returns a client for the cluster reachable through cfg.Seeds. It
// connects to one seed before returning, so a wrong address or cluster name
// fails here rather than on the first call.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Seeds) == 0 {
		return nil, cairn.InvalidArgument("client: at least one seed address is required")
	}
	tcfg := transport.DefaultConfig()
	tcfg.Cluster = cfg.Cluster
	tcfg.DialTimeout = cfg.DialTimeout
	tcfg.HandshakeTimeout = cfg.DialTimeout
	c := &Client{cfg: cfg, pool: transport.NewPool(tcfg)}
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var pong struct{}
	if err := c.call(ctx, wire.TypePing, struct{}{}, &pong); err != nil {
		_ = c.pool.Close()
		return nil, fmt.Errorf("client: no seed reachable: %w", err)
	}
	return c, nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.pool.Close() }

// call sends one request to a seed, moving on to the next seed only when the
// request could not have reached a node (it failed to connect), so a write is
// never sent twice.
func (c *Client) call(ctx context.Context, t wire.Type, req, resp any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	c.mu.Lock()
	first := c.next
	c.mu.Unlock()
	var errs []error
	for i := range c.cfg.Seeds {
		idx := (first + i) % len(c.cfg.Seeds)
		addr := c.cfg.Seeds[idx]
		err := c.pool.Call(ctx, addr, t, req, resp)
		if err == nil || !transport.IsDialError(err) {
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		c.mu.Lock()
		c.next = (idx + 1) % len(c.cfg.Seeds)
		c.mu.Unlock()
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w: %w", cairn.ErrUnavailable, errors.Join(errs...))
}

// Sibling is one concurrent value of a key.
type Sibling struct {
	Value     []byte
	WrittenAt time.Time
}

// Object is the result of a Get.
type Object struct {
	// Found is false when the key has no live value (never written or
	// deleted); Context is still set then.
	Found bool
	// Siblings are the live concurrent values, one when there is no conflict.
	Siblings []Sibling
	// Context is the causal context to pass (Causal) to a Put or Delete that
	// replaces these siblings.
	Context Context
	// Replicas names the nodes whose answers were merged.
	Replicas []string
}

// Context is an opaque causal context. Treat it as bytes: store it, pass it
// back, never build one.
type Context []byte

// Get reads a key.
func (c *Client) Get(ctx context.Context, bucket string, key []byte, opts ...Option) (*Object, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	var resp wire.GetResp
	if err := c.call(ctx, wire.TypeGet, wire.GetReq{Bucket: bucket, Key: key, Opts: o.wire}, &resp); err != nil {
		return nil, err
	}
	obj := &Object{Found: resp.Found, Context: resp.Context, Replicas: resp.Replicas}
	for _, s := range resp.Siblings {
		obj.Siblings = append(obj.Siblings, Sibling{Value: s.Value, WrittenAt: time.Unix(0, s.WrittenAt)})
	}
	return obj, nil
}

// Put writes a value. Without Causal it adds a sibling next to whatever is
// there; with the context of an earlier Get it replaces what that Get saw.
// It returns the context of the object after the write.
func (c *Client) Put(ctx context.Context, bucket string, key, value []byte, opts ...Option) (Context, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	var resp wire.PutResp
	req := wire.PutReq{Bucket: bucket, Key: key, Value: value, Context: o.causal, Opts: o.wire}
	if err := c.call(ctx, wire.TypePut, req, &resp); err != nil {
		return nil, err
	}
	return resp.Context, nil
}

// Delete removes the values the causal context covers (all of them when it
// is the context of the latest Get). Without Causal it removes nothing
// already there but still records a deletion, so pass a context.
func (c *Client) Delete(ctx context.Context, bucket string, key []byte, opts ...Option) (Context, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	var resp wire.DeleteResp
	req := wire.DeleteReq{Bucket: bucket, Key: key, Context: o.causal, Opts: o.wire}
	if err := c.call(ctx, wire.TypeDelete, req, &resp); err != nil {
		return nil, err
	}
	return resp.Context, nil
}

// Seeds returns the addresses the client was configured with.
func (c *Client) Seeds() []string { return slices.Clone(c.cfg.Seeds) }
