package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
)

// topology is the client's picture of the cluster, rebuilt from a node's
// RingState answer and swapped in whole: a call loads it once and routes by
// that one view.
type topology struct {
	// ring places keys; nil when placement is unknown (no ring state yet,
	// a node too old to send it, or a ring this client computes
	// differently from the nodes), and calls then go to any live node.
	ring     *ring.Ring
	version  uint64 // the ring version the node reported
	n        int    // the cluster's configured replication factor; 0 unknown
	members  []Member
	byName   map[string]int // index into members
	byAddr   map[string]string
	live     []string // data addresses of active members seen alive, by name
	mismatch bool     // the ring built here has another version than the node's

	maxKey, maxValue int
	nodeTimeout      time.Duration // the nodes' default request deadline
	from             string        // the node that answered
	fetchedAt        time.Time
}

// Limits a node enforces at most, used until a node says its own.
const (
	anyNodeMaxKey   = 1 << 20
	anyNodeMaxValue = 64 << 20
	anyNodeMaxN     = 16
)

// maxClientFrame bounds the frame limit a node can make the client
// accept: frames are read as their bytes arrive, never allocated ahead,
// but a client has no use for a single answer beyond it.
const maxClientFrame = 1 << 30

// nodeMaxFrame is the frame limit a node's RingState says it uses, or, from
// a node too old to say, the one it derives from its value and key limits.
func nodeMaxFrame(resp wire.RingStateResp) int {
	frame := resp.MaxFrame
	if frame <= 0 {
		frame = 4*(max(resp.MaxValueSize, 0)+max(resp.MaxKeySize, 0)) + 1<<20
	}
	return min(frame, maxClientFrame)
}

// seedTopology is the view before any node sent ring state: the seeds.
func seedTopology() *topology {
	return &topology{maxKey: anyNodeMaxKey, maxValue: anyNodeMaxValue, byName: map[string]int{}, byAddr: map[string]string{}}
}

// buildTopology turns a RingState answer into a topology, reusing prev's
// ring when the member set and version are unchanged (building a ring costs
// O(Q x S)).
func buildTopology(resp wire.RingStateResp, prev *topology, now time.Time) *topology {
	t := &topology{
		version: resp.Version, n: resp.N, from: resp.Node, fetchedAt: now,
		maxKey: resp.MaxKeySize, maxValue: resp.MaxValueSize,
		nodeTimeout: time.Duration(resp.RequestTimeoutMs) * time.Millisecond,
		byName:      make(map[string]int, len(resp.Members)),
		byAddr:      make(map[string]string, len(resp.Members)),
	}
	if t.maxKey <= 0 {
		t.maxKey = anyNodeMaxKey
	}
	if t.maxValue <= 0 {
		t.maxValue = anyNodeMaxValue
	}
	var active []string
	var seats map[string]string
	members := slices.Clone(resp.Members)
	slices.SortFunc(members, func(a, b wire.MemberInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for _, m := range members {
		if _, dup := t.byName[m.Name]; dup || m.Name == "" {
			continue
		}
		t.byName[m.Name] = len(t.members)
		t.members = append(t.members, Member(m))
		if m.Addr != "" {
			t.byAddr[m.Addr] = m.Name
		}
		// A leaving member owns its partitions until the change moving
		// them away completes: it is in the node's ring.
		if m.Status == "active" || m.Status == "leaving" {
			active = append(active, m.Name)
			if m.Alive && m.Addr != "" {
				t.live = append(t.live, m.Addr)
			}
			if m.Seat != "" {
				if seats == nil {
					seats = map[string]string{}
				}
				seats[m.Name] = m.Seat
			}
		}
	}
	// A member whose seat another active member took owns nothing, even
	// before its removal reached the node that answered.
	active = slices.DeleteFunc(active, func(name string) bool {
		for _, s := range seats {
			if s == name {
				return true
			}
		}
		return false
	})
	if prev != nil && prev.ring != nil && prev.version == resp.Version && prev.ring.Partitions() == resp.Partitions &&
		slices.Equal(prev.ring.Members(), active) {
		t.ring = prev.ring
		return t
	}
	r, err := ring.NewSeated(resp.Partitions, active, seats)
	switch {
	case err != nil:
		t.mismatch = true
	case r.Version() != resp.Version:
		// Another claim rule than the node's: routing by it would send
		// every call to the wrong node. Route as if placement were
		// unknown; the nodes still forward correctly.
		t.mismatch = true
	default:
		t.ring = r
	}
	return t
}

// name returns the member name of a data address, or the address itself.
func (t *topology) name(addr string) string {
	if n, ok := t.byAddr[addr]; ok {
		return n
	}
	return addr
}

// member returns the named member's entry.
func (t *topology) member(name string) (Member, bool) {
	i, ok := t.byName[name]
	if !ok {
		return Member{}, false
	}
	return t.members[i], true
}

// replicationFactor is how many distinct nodes hold each key.
func (t *topology) replicationFactor() int {
	if t.ring == nil {
		return 0
	}
	n := t.n
	if n <= 0 {
		n = 3
	}
	return min(n, len(t.ring.Members()))
}

// fetchRing asks one node for its ring state.
func (c *Client) fetchRing(ctx context.Context, addr string) (wire.RingStateResp, error) {
	var resp wire.RingStateResp
	err := c.pool.Call(ctx, addr, wire.TypeRingState, struct{}{}, &resp)
	return resp, err
}

// refreshRing reads ring state from one reachable node, prefer first when
// given, and installs it. It reports whether it did.
func (c *Client) refreshRing(prefer string) bool {
	t := c.topo.Load()
	var order []string
	if prefer != "" {
		order = append(order, prefer)
	}
	// Start at a different live node each time, so that one node's stale
	// view does not stick.
	if k := len(t.live); k > 0 {
		start := int(c.rr.Add(1) % uint64(k))
		for i := range k {
			order = append(order, t.live[(start+i)%k])
		}
	}
	order = append(order, c.cfg.Seeds...)
	now := c.now()
	tried := 0
	for _, addr := range dedupe(order) {
		if tried == 3 || c.life.Err() != nil {
			break
		}
		if !c.health.usable(addr, now) {
			continue
		}
		tried++
		ctx, cancel := context.WithTimeout(c.life, c.cfg.DialTimeout)
		resp, err := c.fetchRing(ctx, addr)
		cancel()
		if err != nil {
			if transport.IsDialError(err) {
				c.health.fail(addr, c.now())
			}
			continue
		}
		c.health.ok(addr)
		c.install(resp)
		return true
	}
	return false
}

// install swaps in the topology of a RingState answer, and lets the
// connections read the largest frames that node may send.
func (c *Client) install(resp wire.RingStateResp) {
	c.pool.RaiseMaxFrame(nodeMaxFrame(resp))
	prev := c.topo.Load()
	c.topo.Store(buildTopology(resp, prev, c.now()))
	c.stats.ringRefreshes.Add(1)
	c.lastRefresh.Store(c.now().UnixNano())
}

// refreshLoop keeps the topology current: every RingRefreshInterval, and
// at once when a call saw a sign that it is stale.
func (c *Client) refreshLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.RingRefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case <-tick.C:
			c.refreshRing("")
		case addr := <-c.refreshNow:
			c.refreshRing(addr)
		}
	}
}

// minTriggerGap spaces refreshes that calls trigger, so that nodes
// disagreeing for a moment during a ring change do not make every answer
// trigger one.
const minTriggerGap = 50 * time.Millisecond

// triggerRefresh asks the refresher for a refresh now, from addr when
// given (the node whose answer showed another ring version: it has the view
// to fetch). It never blocks.
func (c *Client) triggerRefresh(addr string) {
	if c.cfg.Routing == SeedsOnly {
		return
	}
	if c.now().UnixNano()-c.lastRefresh.Load() < int64(minTriggerGap) {
		return
	}
	select {
	case c.refreshNow <- addr:
	default:
	}
}

// first contact: ring state from the first seed that answers, or, from a
// node too old to serve it, a ping.
func (c *Client) connect(ctx context.Context) error {
	var errs []error
	for _, seed := range c.cfg.Seeds {
		sctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		resp, err := c.fetchRing(sctx, seed)
		if errors.Is(err, cairn.ErrInvalidArgument) {
			err = c.pool.Call(sctx, seed, wire.TypePing, struct{}{}, nil)
			if err == nil {
				cancel()
				return nil
			}
		}
		cancel()
		if err == nil {
			c.install(resp)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", seed, err))
		if ctx.Err() != nil || errors.Is(err, cairn.ErrProtocol) || errors.Is(err, cairn.ErrUnauthorized) {
			// Out of time, or refused for who we are (another cluster
			// name, credentials): another seed of the cluster would too.
			break
		}
	}
	return errors.Join(errs...)
}

func dedupe(addrs []string) []string {
	seen := make(map[string]bool, len(addrs))
	out := addrs[:0:0]
	for _, a := range addrs {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// View is the client's picture of the cluster, for operators and tests.
type View struct {
	// Routing is the configured policy; TokenAware is false when
	// placement is unknown (no ring state yet, or a ring this client
	// computes differently from the nodes) and calls go to any live node.
	Routing    Routing
	TokenAware bool
	// RingVersion is the version of the ring the client routes by (0
	// before any ring state arrived).
	RingVersion uint64
	Partitions  int
	N           int
	Members     []Member
	// From is the node whose answer this is, at FetchedAt.
	From      string
	FetchedAt time.Time
}

// View returns the client's current picture of the cluster.
func (c *Client) View() View {
	t := c.topo.Load()
	v := View{Routing: c.cfg.Routing, TokenAware: c.cfg.Routing == TokenAware && t.ring != nil,
		RingVersion: t.version, N: t.replicationFactor(), Members: slices.Clone(t.members), From: t.from, FetchedAt: t.fetchedAt}
	if t.ring != nil {
		v.Partitions = t.ring.Partitions()
	}
	return v
}

// Placement returns the primary replicas of a key, in preference order, as
// the client's copy of the ring places it; nil when placement is unknown.
func (c *Client) Placement(bucket string, key []byte) []string {
	t := c.topo.Load()
	if t.ring == nil {
		return nil
	}
	primaries, _ := t.ring.Preference(t.ring.KeyPartition(bucket, key), t.replicationFactor())
	return primaries
}
