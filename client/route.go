package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// op is what a call does, which decides what may be retried.
type op int

const (
	opGet op = iota
	opPut
	opDelete
	opIncr
)

func (o op) String() string {
	switch o {
	case opGet:
		return "get"
	case opPut:
		return "put"
	case opIncr:
		return "counter incr"
	}
	return "delete"
}

// candidates lists the addresses a call may try, best first, and how many
// of the first ones are replicas of the key (targets the node would pick
// itself, so that no hop follows).
//
// TokenAware: the key's primaries that are alive and not skipped (for a
// get starting at a rotating one, which spreads a hot key's reads over its
// replicas; a put always starts at the first, like a Riak coordinator),
// then its fallbacks in preference order (each stands in for a dead
// primary), then the seeds. RoundRobin: every live node starting at a
// rotating one, then the seeds. SeedsOnly: the seeds, starting at the one
// that last answered.
func (c *Client) candidates(t *topology, o op, bucket string, key []byte) (addrs []string, direct int) {
	now := c.now()
	usable := func(addr string) bool { return addr != "" && c.health.usable(addr, now) }
	switch {
	case c.cfg.Routing == TokenAware && t.ring != nil:
		primaries, fallbacks := t.ring.Preference(t.ring.KeyPartition(bucket, key), t.replicationFactor())
		addrs = make([]string, 0, len(primaries)+len(fallbacks)+len(c.cfg.Seeds))
		alive := func(name string) string {
			m, ok := t.member(name)
			if !ok || !m.Alive || !usable(m.Addr) {
				return ""
			}
			return m.Addr
		}
		start := 0
		if o == opGet && len(primaries) > 1 {
			start = int(c.rr.Add(1) % uint64(len(primaries)))
		}
		for i := range primaries {
			if a := alive(primaries[(start+i)%len(primaries)]); a != "" {
				addrs = append(addrs, a)
			}
		}
		direct = len(addrs)
		if direct == 0 {
			// Every primary is down: the first live fallback is the
			// node's own choice of stand-in, so it holds the key too.
			for _, f := range fallbacks {
				if a := alive(f); a != "" {
					addrs = append(addrs, a)
					direct = 1
					break
				}
			}
		}
		for _, f := range fallbacks {
			if a := alive(f); a != "" {
				addrs = append(addrs, a)
			}
		}
	case c.cfg.Routing != SeedsOnly && len(t.live) > 0:
		k := len(t.live)
		start := int(c.rr.Add(1) % uint64(k))
		addrs = make([]string, 0, k+len(c.cfg.Seeds))
		for i := range k {
			if a := t.live[(start+i)%k]; usable(a) {
				addrs = append(addrs, a)
			}
		}
	}
	k := len(c.cfg.Seeds)
	start := int(c.seedNext.Load() % uint64(k))
	for i := range k {
		if a := c.cfg.Seeds[(start+i)%k]; usable(a) {
			addrs = append(addrs, a)
		}
	}
	return dedupe(addrs), direct
}

// exchange is one data call: the request, the options inside it (so each
// attempt can carry the deadline it has left), and how to read the ring
// version from the answer.
type exchange struct {
	op          op
	bucket      string
	key         []byte
	typ         wire.Type
	req         any
	opts        *wire.Options
	timeout     uint32 // the caller's Timeout option, 0 for none
	resp        any
	ringVersion func() uint64
}

// do sends a call to the best candidate and moves on when that is safe: to
// the next candidate when a node could not be connected to (the request
// never left, so even a write may go elsewhere), and, after a jittered
// pause within MaxAttempts and the retry budget, when a node answered with
// a failure that another node may not have: for a get any such failure,
// for a write only overloaded (the node refused it before doing anything).
// Every pause ends with ctx. It returns the name of the node that
// answered.
func (c *Client) do(ctx context.Context, x exchange) (string, error) {
	c.stats.calls.Add(1)
	c.budget.deposit()
	t := c.topo.Load()
	addrs, direct := c.candidates(t, x.op, x.bucket, x.key)
	if direct > 0 {
		c.stats.direct.Add(1)
	}
	var errs []error
	attempts := 0
	for i := 0; ; i++ {
		if i == len(addrs) {
			// Every candidate failed or is skipped. Wait for the first
			// skipped node to be worth another try, if the deadline
			// allows, rather than fail while a node may be back.
			if !c.waitForNode(ctx) {
				return "", noNode(x.op, errs, ctx)
			}
			t = c.topo.Load()
			addrs, _ = c.candidates(t, x.op, x.bucket, x.key)
			i = -1
			continue
		}
		addr := addrs[i]
		x.opts.TimeoutMs = c.nodeTimeout(ctx, t, x.timeout)
		err := c.pool.Call(ctx, addr, x.typ, x.req, x.resp)
		if err == nil {
			c.health.ok(addr)
			if v := x.ringVersion(); v != 0 && v != t.version {
				c.triggerRefresh(addr)
			}
			return t.name(addr), nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		if transport.IsDialError(err) {
			errs = append(errs, fmt.Errorf("%s: %w", t.name(addr), err))
			c.health.fail(addr, c.now())
			c.stats.redirects.Add(1)
			c.triggerRefresh("")
			continue
		}
		attempts++
		retry := retryableRead(err)
		if x.op != opGet {
			// A node answers overloaded before it does anything with a
			// request, so even a write may be sent again, after a pause.
			retry = errors.Is(err, cairn.ErrOverloaded)
		}
		if !retry || attempts >= c.cfg.Retry.MaxAttempts {
			return "", err
		}
		if !c.budget.withdraw(c.now()) {
			c.stats.budgetExhausted.Add(1)
			return "", err
		}
		errs = append(errs, fmt.Errorf("%s: %w", t.name(addr), err))
		if errors.Is(err, cairn.ErrUnavailable) {
			// Shutting down, or the connection broke under the call.
			c.health.fail(addr, c.now())
			c.triggerRefresh("")
		}
		c.stats.retries.Add(1)
		if !sleep(ctx, retryPause(c.cfg.Retry.Backoff, c.cfg.Retry.MaxBackoff, attempts)) {
			return "", err
		}
		if i == len(addrs)-1 {
			// Out of other candidates: a read may ask the same ones again.
			t = c.topo.Load()
			addrs, _ = c.candidates(t, x.op, x.bucket, x.key)
			i = -1
		}
	}
}

// waitForNode sleeps until the first skipped node may be tried again and
// reports whether it did so before the deadline.
func (c *Client) waitForNode(ctx context.Context) bool {
	at, ok := c.health.nextUsable()
	if !ok {
		return false
	}
	d := at.Sub(c.now())
	if d <= 0 {
		// The skipped nodes may be tried already; they just are not
		// candidates of this call (down as the cluster sees them).
		return false
	}
	if dl, has := ctx.Deadline(); has && c.now().Add(d).After(dl) {
		return false
	}
	return sleep(ctx, d)
}

func noNode(o op, errs []error, ctx context.Context) error {
	if len(errs) == 0 {
		return fmt.Errorf("%w: %v: every node is skipped after refusing connections", cairn.ErrUnavailable, o)
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v: %w", cairn.ErrTimeout, o, errors.Join(errs...))
	}
	return fmt.Errorf("%w: %v: no node reachable: %w", cairn.ErrUnavailable, o, errors.Join(errs...))
}

// nodeTimeout is the deadline an attempt asks the node for: the caller's
// Timeout option, or the node's default, but never more than the call has
// left (less a margin for the answer to travel back), so that a node stops
// working for a caller that has gone, and a failed first attempt leaves
// time for a second.
func (c *Client) nodeTimeout(ctx context.Context, t *topology, asked uint32) uint32 {
	dl, ok := ctx.Deadline()
	if !ok {
		return asked
	}
	left := dl.Sub(c.now())
	left -= min(100*time.Millisecond, max(5*time.Millisecond, left/20))
	ms := uint32(max(1, left.Milliseconds()))
	switch {
	case asked > 0:
		return min(asked, ms)
	case t.nodeTimeout > 0 && left < t.nodeTimeout:
		return ms
	}
	return 0
}

// sleep waits d or until ctx ends, reporting whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
