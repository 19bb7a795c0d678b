package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// The errors a call can return, shared with the server (package cairn):
// a node's error crosses the wire as a code and comes back as the same
// sentinel, so errors.Is works on whatever a call returns.
var (
	// ErrNotFound: no such member (RemoveMember). A Get of a missing key
	// is not an error: it returns an Object with Found false.
	ErrNotFound = cairn.ErrNotFound
	// ErrQuorum: fewer replicas than asked answered; errors.As with a
	// *QuorumError gives the counts. A write that fails so is not rolled
	// back: what landed stays.
	ErrQuorum = cairn.ErrQuorum
	// ErrTimeout: the deadline passed (the call's context, or the node's
	// Timeout). A *QuorumError decided by the deadline is both.
	ErrTimeout = cairn.ErrTimeout
	// ErrInvalidArgument: the request is wrong (checked by the client
	// before sending when it can); retrying cannot help.
	ErrInvalidArgument = cairn.ErrInvalidArgument
	// ErrOverloaded: a node refused work to protect itself.
	ErrOverloaded = cairn.ErrOverloaded
	// ErrUnauthorized: the credentials were refused.
	ErrUnauthorized = cairn.ErrUnauthorized
	// ErrProtocol: a node broke the protocol, or speaks another cluster.
	ErrProtocol = cairn.ErrProtocol
	// ErrUnavailable: no node could take the call (all refused
	// connections or are shutting down), or a connection broke under a
	// write, which may or may not have been applied.
	ErrUnavailable = cairn.ErrUnavailable
	// ErrInternal: a node failed in a way that is its own fault.
	ErrInternal = cairn.ErrInternal
	// ErrSiblings: Update found concurrent values and has no Resolver to
	// merge them. It is the client's own; no node sends it.
	ErrSiblings = errors.New("siblings and no resolver")
	// ErrValuesOmitted: Update read a key whose values were too large to
	// send (Object.ValuesOmitted), so it has nothing to give its function.
	// It is the client's own; no node sends it.
	ErrValuesOmitted = errors.New("values omitted: too large to send in one answer")
)

// QuorumError carries the counts of a request that did not reach its quorum.
type QuorumError = cairn.QuorumError

// Client is a connection to one cluster, safe for concurrent use by any
// number of goroutines: share one per process. Close it when done.
type Client struct {
	cfg    Config
	pool   *transport.Pool
	now    func() time.Time
	health *health
	budget *retryBudget
	stats  counters

	topo        atomic.Pointer[topology]
	rr          atomic.Uint64 // rotates reads and round-robin starts
	seedNext    atomic.Uint64 // the seed to try first
	lastRefresh atomic.Int64  // unix nanoseconds of the last ring refresh
	refreshNow  chan string

	// life ends at Close; the ring refresher runs until then.
	life      context.Context
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New returns a client for the cluster reachable through cfg.Seeds. It
// fetches the ring from the first seed that answers before returning, so a
// wrong address or cluster name fails here rather than on the first call;
// each seed gets DialTimeout, and ctx bounds the whole.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Seeds = slices.Clone(cfg.Seeds)
	tcfg := transport.DefaultConfig()
	tcfg.Cluster = cfg.Cluster
	tcfg.DialTimeout = cfg.DialTimeout
	tcfg.HandshakeTimeout = cfg.DialTimeout
	tcfg.ConnsPerAddr = cfg.ConnsPerNode
	if cfg.Token != "" {
		tcfg.Auth = []byte(cfg.Token)
	}
	if cfg.TLS != nil {
		base := cfg.TLS.Clone()
		tcfg.ClientTLS = func(addr string) (*tls.Config, error) {
			c := base.Clone()
			if c.ServerName == "" {
				host, _, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				c.ServerName = host
			}
			return c, nil
		}
	}
	c := &Client{
		cfg: cfg, pool: transport.NewPool(tcfg), now: time.Now,
		health:     newHealth(cfg.NodeBackoff, cfg.MaxNodeBackoff),
		refreshNow: make(chan string, 1),
	}
	c.budget = newRetryBudget(cfg.Retry.BudgetRatio, cfg.Retry.BudgetPerSecond, c.now())
	c.topo.Store(seedTopology())
	c.life, c.stop = context.WithCancel(context.Background())
	if err := c.connect(ctx); err != nil {
		c.stop()
		_ = c.pool.Close()
		return nil, fmt.Errorf("client: no seed reachable: %w", err)
	}
	if cfg.Routing != SeedsOnly {
		c.wg.Add(1)
		go c.refreshLoop()
	}
	return c, nil
}

// Close stops the ring refresher and closes every connection; calls in
// flight fail with ErrUnavailable. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.stop()
		c.wg.Wait()
		c.closeErr = c.pool.Close()
	})
	return c.closeErr
}

// callContext gives a call the deadline of its context, or RequestTimeout
// (longer when the call's Timeout option asks for longer).
func (c *Client) callContext(ctx context.Context, o *callOptions) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	d := c.cfg.RequestTimeout
	if asked := time.Duration(o.wire.TimeoutMs) * time.Millisecond; asked+time.Second > d {
		d = asked + time.Second
	}
	return context.WithTimeout(ctx, d)
}

// call sends an admin request to any reachable node: the seeds first, the
// one that last answered first of all (so that `cairn status --addr X`
// shows X), then the other live nodes. It moves on only when a node could
// not be connected to, so a request is never sent twice.
func (c *Client) call(ctx context.Context, t wire.Type, req, resp any) error {
	_, err := c.callAt(ctx, t, req, resp)
	return err
}

// callAt is call, also returning the address that answered.
func (c *Client) callAt(ctx context.Context, t wire.Type, req, resp any) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	topo := c.topo.Load()
	k := len(c.cfg.Seeds)
	first := int(c.seedNext.Load() % uint64(k))
	var order []string
	for i := range k {
		order = append(order, c.cfg.Seeds[(first+i)%k])
	}
	if c.cfg.Routing != SeedsOnly {
		order = append(order, topo.live...)
	}
	var errs []error
	for _, addr := range dedupe(order) {
		err := c.pool.Call(ctx, addr, t, req, resp)
		if err == nil || !transport.IsDialError(err) {
			if err == nil {
				c.health.ok(addr)
			}
			return addr, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		c.health.fail(addr, c.now())
		if i := slices.Index(c.cfg.Seeds, addr); i >= 0 {
			c.seedNext.Store(uint64(i + 1))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("%w: %w", cairn.ErrUnavailable, errors.Join(errs...))
}

// Sibling is one concurrent value of a key.
type Sibling struct {
	Value []byte
	// WrittenAt is when the coordinator of the write received it, by its
	// hybrid logical clock (its wall clock, or just past the latest write
	// the key held when that clock was behind): informational, the
	// tiebreak of LastWriteWins, and what a last-write-wins bucket keeps
	// the latest by.
	WrittenAt time.Time
}

// Object is the result of a Get.
type Object struct {
	// Found is false when the key has no live value (never written, or
	// deleted); Context is still set then.
	Found bool
	// Value is the key's one value: its only sibling, or the merge the
	// Resolver made of several. It is nil when nothing was found, and when
	// there are several siblings and no resolver (Conflict reports that).
	Value []byte
	// Siblings are the live concurrent values as stored, one when there
	// is no conflict; len(Siblings) is the sibling count, resolver or not.
	Siblings []Sibling
	// Context is the causal context to pass (Causal) to a Put or Delete
	// that replaces these siblings.
	Context Context
	// Replicas names the nodes whose answers were merged.
	Replicas []string
	// Fallbacks names those of Replicas that answered as fallbacks for an
	// unreachable primary (empty when every answer came from a primary;
	// PR counts primaries only).
	Fallbacks []string
	// Coordinator is the node the client sent the get to.
	Coordinator string
	// SiblingCount is how many live siblings the key has:
	// len(Siblings), or, when ValuesOmitted, the count the node reported
	// (at least that many).
	SiblingCount int
	// ValuesOmitted says the node could not send the values: together
	// they were too large for one answer. Siblings and Value are empty;
	// Found and Context are right. Writing with Context (Causal) replaces
	// every sibling, which is how to bring such a key back: a Put of the
	// merged value, or a Delete.
	ValuesOmitted bool

	unresolved bool
}

// Conflict reports whether the key has several siblings that no resolver
// merged, so Value is nil: resolve them (Siblings), and write the result
// back with Context. It is also true when the values were omitted and
// there are several (ValuesOmitted).
func (o *Object) Conflict() bool { return o.unresolved }

// Context is an opaque causal context. Treat it as bytes: store it, pass it
// back, never build one.
type Context []byte

// Get reads a key: R replicas answer (PR of them primaries), and the merge
// of their copies comes back with one context. A key never written is not
// an error: the Object says Found false.
func (c *Client) Get(ctx context.Context, bucket string, key []byte, opts ...Option) (*Object, error) {
	o, err := c.buildOptions(opts)
	if err != nil {
		return nil, err
	}
	t := c.topo.Load()
	if err := o.validate(t, opGet, bucket, key, nil); err != nil {
		return nil, err
	}
	ctx, cancel := c.callContext(ctx, &o)
	defer cancel()
	req := wire.GetReq{Bucket: bucket, Key: key, Opts: o.wire}
	var resp wire.GetResp
	coord, err := c.do(ctx, exchange{op: opGet, bucket: bucket, key: key, typ: wire.TypeGet, req: &req, opts: &req.Opts,
		timeout: o.wire.TimeoutMs, resp: &resp, ringVersion: func() uint64 { return resp.RingVersion }})
	if err != nil {
		return nil, err
	}
	obj := &Object{Found: resp.Found, Context: resp.Context, Replicas: resp.Replicas, Fallbacks: resp.Fallbacks, Coordinator: coord}
	if resp.ValuesOmitted {
		obj.ValuesOmitted = true
		obj.SiblingCount = max(resp.SiblingCount, 0)
		obj.unresolved = obj.SiblingCount > 1
		return obj, nil
	}
	for _, s := range resp.Siblings {
		obj.Siblings = append(obj.Siblings, Sibling{Value: s.Value, WrittenAt: time.Unix(0, s.WrittenAt)})
	}
	obj.SiblingCount = len(obj.Siblings)
	switch {
	case len(obj.Siblings) == 1:
		obj.Value = obj.Siblings[0].Value
	case len(obj.Siblings) > 1 && o.resolver != nil:
		v, err := o.resolver(slices.Clone(obj.Siblings))
		if err != nil {
			return nil, fmt.Errorf("client: resolving %d siblings: %w", len(obj.Siblings), err)
		}
		obj.Value = v
	case len(obj.Siblings) > 1:
		obj.unresolved = true
	}
	return obj, nil
}

// Put writes a value. Without Causal it adds a sibling next to whatever is
// there; with the context of an earlier Get it replaces what that Get saw
// (and only that: a value written concurrently survives as a sibling).
// It returns the context of the object after the write.
//
// A put that fails with ErrQuorum or ErrTimeout, or ErrUnavailable after
// its connection broke, may have landed on some replicas: it is not rolled
// back, and the client does not resend it (that could make one write two
// siblings). Only a put that never left (no connection could be made) is
// sent to another node, and one a node refused as overloaded is sent
// again after a backoff pause, within Retry.MaxAttempts and ctx: a node
// refuses before doing anything.
func (c *Client) Put(ctx context.Context, bucket string, key, value []byte, opts ...Option) (Context, error) {
	var resp wire.PutResp
	if _, err := c.keyCall(ctx, opPut, bucket, key, value, opts, func(o *callOptions) exchange {
		req := &wire.PutReq{Bucket: bucket, Key: key, Value: value, Context: o.causal, Opts: o.wire}
		return exchange{op: opPut, bucket: bucket, key: key, typ: wire.TypePut, req: req, opts: &req.Opts,
			timeout: o.wire.TimeoutMs, resp: &resp, ringVersion: func() uint64 { return resp.RingVersion }}
	}); err != nil {
		return nil, err
	}
	return resp.Context, nil
}

// Delete removes the values the causal context covers (all of them when it
// is the context of the latest Get): it writes a tombstone, so a value
// written concurrently survives. Without Causal it removes nothing already
// there but still records a deletion, so pass a context. Retries follow
// Put's rule.
func (c *Client) Delete(ctx context.Context, bucket string, key []byte, opts ...Option) (Context, error) {
	var resp wire.DeleteResp
	if _, err := c.keyCall(ctx, opDelete, bucket, key, nil, opts, func(o *callOptions) exchange {
		req := &wire.DeleteReq{Bucket: bucket, Key: key, Context: o.causal, Opts: o.wire}
		return exchange{op: opDelete, bucket: bucket, key: key, typ: wire.TypeDelete, req: req, opts: &req.Opts,
			timeout: o.wire.TimeoutMs, resp: &resp, ringVersion: func() uint64 { return resp.RingVersion }}
	}); err != nil {
		return nil, err
	}
	return resp.Context, nil
}

// keyCall runs one call about bucket/key: the options built and checked
// against the topology, the call's deadline, and the exchange build makes
// of them (its request carries the options on the wire). It returns the
// node that answered.
func (c *Client) keyCall(ctx context.Context, op op, bucket string, key, value []byte, opts []Option, build func(o *callOptions) exchange) (string, error) {
	o, err := c.buildOptions(opts)
	if err != nil {
		return "", err
	}
	if err := o.validate(c.topo.Load(), op, bucket, key, value); err != nil {
		return "", err
	}
	ctx, cancel := c.callContext(ctx, &o)
	defer cancel()
	return c.do(ctx, build(&o))
}

// Seeds returns the addresses the client was configured with.
func (c *Client) Seeds() []string { return slices.Clone(c.cfg.Seeds) }

// counters are the client's running totals (see Stats).
type counters struct {
	calls, direct, redirects, retries, budgetExhausted, ringRefreshes atomic.Uint64
}

// Stats are running totals since New, for metrics and tests.
type Stats struct {
	// Calls counts Get, Put and Delete calls (an Update is two).
	Calls uint64
	// Direct counts calls first sent to a replica of their key: with
	// TokenAware routing and a current ring, every call.
	Direct uint64
	// Redirects counts attempts moved to another node because a node
	// refused the connection (the request never left).
	Redirects uint64
	// Retries counts gets asked again after a node failed them, and
	// writes sent again after a node refused them as overloaded;
	// BudgetExhausted counts retries the budget refused.
	Retries         uint64
	BudgetExhausted uint64
	// RingRefreshes counts ring states fetched and installed.
	RingRefreshes uint64
}

// Stats returns the client's running totals.
func (c *Client) Stats() Stats {
	return Stats{
		Calls: c.stats.calls.Load(), Direct: c.stats.direct.Load(), Redirects: c.stats.redirects.Load(),
		Retries: c.stats.retries.Load(), BudgetExhausted: c.stats.budgetExhausted.Load(),
		RingRefreshes: c.stats.ringRefreshes.Load(),
	}
}
