package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

// testClient is a client with no connections and no refresher, for the
// routing decisions alone.
func testClient(t *testing.T, cfg Config, now func() time.Time) *Client {
	t.Helper()
	require.NoError(t, cfg.Validate())
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, now: now, health: newHealth(cfg.NodeBackoff, cfg.MaxNodeBackoff),
		refreshNow: make(chan string, 1), pool: transport.NewPool(transport.DefaultConfig())}
	c.budget = newRetryBudget(cfg.Retry.BudgetRatio, cfg.Retry.BudgetPerSecond, now())
	c.topo.Store(seedTopology())
	t.Cleanup(func() { _ = c.pool.Close() })
	return c
}

func ringState(t *testing.T, n int, dead ...string) wire.RingStateResp {
	t.Helper()
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	r, err := ring.New(64, names)
	require.NoError(t, err)
	resp := wire.RingStateResp{Node: "n1", Partitions: 64, N: n, Version: r.Version(), MaxKeySize: 100, MaxValueSize: 1000, RequestTimeoutMs: 2000}
	for i, name := range names {
		alive := true
		for _, d := range dead {
			alive = alive && d != name
		}
		resp.Members = append(resp.Members, wire.MemberInfo{Name: name, Addr: fmt.Sprintf("10.0.0.%d:7101", i+1), Status: "active", Alive: alive})
	}
	resp.Members = append(resp.Members, wire.MemberInfo{Name: "gone", Addr: "10.0.0.9:7101", Status: "removed"})
	return resp
}

func addr(name string) string { return fmt.Sprintf("10.0.0.%c:7101", name[1]) }

func TestBuildTopologyChecksTheRingVersion(t *testing.T) {
	now := time.Unix(100, 0)
	resp := ringState(t, 3)
	topo := buildTopology(resp, nil, now)
	require.NotNil(t, topo.ring)
	require.Equal(t, []string{"n1", "n2", "n3", "n4", "n5"}, topo.ring.Members(), "removed members own nothing")
	require.Len(t, topo.live, 5)
	require.Equal(t, 100, topo.maxKey)
	require.Equal(t, 2*time.Second, topo.nodeTimeout)

	again := buildTopology(resp, topo, now)
	require.Same(t, topo.ring, again.ring, "an unchanged ring is not rebuilt")

	resp.Version++
	other := buildTopology(resp, topo, now)
	require.Nil(t, other.ring, "a ring placed differently from the nodes' is not routed by")
	require.True(t, other.mismatch)
	require.Len(t, other.live, 5, "calls still go to live nodes")
}

func TestCandidatesTokenAware(t *testing.T) {
	now := time.Unix(100, 0)
	c := testClient(t, Config{Seeds: []string{"seed:1"}}, func() time.Time { return now })
	c.topo.Store(buildTopology(ringState(t, 3, "n2"), nil, now))
	topo := c.topo.Load()

	for i := range 50 {
		key := fmt.Appendf(nil, "k%d", i)
		primaries, fallbacks := topo.ring.Preference(topo.ring.KeyPartition("b", key), 3)
		var live []string
		for _, p := range primaries {
			if p != "n2" {
				live = append(live, addr(p))
			}
		}
		addrs, direct := c.candidates(topo, opPut, "b", key)
		require.Equal(t, len(live), direct)
		require.Equal(t, live, addrs[:direct], "a put starts at the first live primary, in order")
		var rest []string
		for _, f := range fallbacks {
			if f != "n2" {
				rest = append(rest, addr(f))
			}
		}
		require.Equal(t, append(rest, "seed:1"), addrs[direct:], "then the live fallbacks, then the seeds")
		require.NotContains(t, addrs, addr("n2"), "a node the cluster sees dead is not tried")

		got, direct := c.candidates(topo, opGet, "b", key)
		require.ElementsMatch(t, live, got[:direct], "a get starts at any live primary")
	}
}

func TestCandidatesWhenEveryPrimaryIsDown(t *testing.T) {
	now := time.Unix(100, 0)
	c := testClient(t, Config{Seeds: []string{"seed:1"}}, func() time.Time { return now })
	r := buildTopology(ringState(t, 2), nil, now).ring
	key := []byte("k")
	primaries, fallbacks := r.Preference(r.KeyPartition("b", key), 2)
	c.topo.Store(buildTopology(ringState(t, 2, primaries...), nil, now))
	addrs, direct := c.candidates(c.topo.Load(), opPut, "b", key)
	require.Equal(t, 1, direct, "the first live fallback stands in, so it holds the key")
	require.Equal(t, addr(fallbacks[0]), addrs[0])
}

func TestCandidatesSkipARefusingNodeForABackoff(t *testing.T) {
	now := time.Unix(100, 0)
	c := testClient(t, Config{Seeds: []string{"seed:1"}, NodeBackoff: time.Second, MaxNodeBackoff: 4 * time.Second},
		func() time.Time { return now })
	c.topo.Store(buildTopology(ringState(t, 3), nil, now))
	key := []byte("k")
	first, _ := c.candidates(c.topo.Load(), opPut, "b", key)

	pause := c.health.fail(first[0], now)
	require.InDelta(t, float64(time.Second), float64(pause), float64(time.Second/4))
	skipped, _ := c.candidates(c.topo.Load(), opPut, "b", key)
	require.NotContains(t, skipped, first[0])
	require.Equal(t, first[1:], skipped)

	now = now.Add(pause)
	back, _ := c.candidates(c.topo.Load(), opPut, "b", key)
	require.Equal(t, first, back, "after the pause the node is tried again")

	require.InDelta(t, float64(2*time.Second), float64(c.health.fail(first[0], now)), float64(time.Second/2), "the pause doubles")
	now = now.Add(time.Hour)
	c.health.fail(first[0], now)
	require.LessOrEqual(t, c.health.fail(first[0], now), 4*time.Second, "up to the cap")
	c.health.ok(first[0])
	require.True(t, c.health.usable(first[0], now), "an answer clears it")
	_, skipping := c.health.nextUsable()
	require.False(t, skipping)
}

func TestCandidatesWithoutPlacement(t *testing.T) {
	now := time.Unix(100, 0)
	seeds := []string{"s1:1", "s2:1"}
	rr := testClient(t, Config{Seeds: seeds, Routing: RoundRobin}, func() time.Time { return now })
	rr.topo.Store(buildTopology(ringState(t, 3, "n5"), nil, now))
	starts := map[string]bool{}
	for range 8 {
		addrs, direct := rr.candidates(rr.topo.Load(), opPut, "b", []byte("k"))
		require.Zero(t, direct)
		require.Len(t, addrs, 6, "four live nodes, then the seeds")
		require.Equal(t, seeds, addrs[4:])
		starts[addrs[0]] = true
	}
	require.Len(t, starts, 4, "round robin starts at each live node in turn")

	so := testClient(t, Config{Seeds: seeds, Routing: SeedsOnly}, func() time.Time { return now })
	so.topo.Store(buildTopology(ringState(t, 3), nil, now))
	addrs, _ := so.candidates(so.topo.Load(), opGet, "b", []byte("k"))
	require.Equal(t, seeds, addrs)

	unknown := testClient(t, Config{Seeds: seeds}, func() time.Time { return now })
	addrs, _ = unknown.candidates(unknown.topo.Load(), opGet, "b", []byte("k"))
	require.Equal(t, seeds, addrs, "before any ring state: the seeds")
}

func TestRetryBudget(t *testing.T) {
	now := time.Unix(100, 0)
	b := newRetryBudget(0.1, 2, now)
	spent := 0
	for b.withdraw(now) {
		spent++
	}
	require.Equal(t, 12, spent, "a burst of a second's floor plus a hundred calls' worth")
	for range 9 {
		b.deposit()
	}
	require.False(t, b.withdraw(now), "nine calls earn less than one retry")
	b.deposit()
	require.True(t, b.withdraw(now), "ten calls earn one")
	require.False(t, b.withdraw(now))
	now = now.Add(500 * time.Millisecond)
	require.True(t, b.withdraw(now), "the floor refills two a second")
	require.False(t, b.withdraw(now))
	now = now.Add(time.Hour)
	spent = 0
	for b.withdraw(now) {
		spent++
	}
	require.Equal(t, 12, spent, "never more than the burst")
}

func TestRetryableRead(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{cairn.ErrUnavailable, true},
		{cairn.ErrOverloaded, true},
		{fmt.Errorf("x: %w", cairn.ErrTimeout), true},
		{cairn.ErrInternal, true},
		{cairn.InvalidArgument("r 4"), false},
		{&cairn.QuorumError{Op: "get", Kind: "r", Need: 2, Got: 1, Of: 3}, false},
		{&cairn.QuorumError{Op: "get", Kind: "r", Need: 2, Got: 1, Of: 3, TimedOut: true}, false},
		{cairn.ErrUnauthorized, false},
		{context.Canceled, false},
	} {
		require.Equal(t, tc.want, retryableRead(tc.err), "%v", tc.err)
	}
	for n := 1; n < 10; n++ {
		p := retryPause(10*time.Millisecond, 80*time.Millisecond, n)
		require.GreaterOrEqual(t, p, time.Duration(0))
		require.Less(t, p, 80*time.Millisecond)
	}
}

func TestNodeTimeoutNeverOutlivesTheCall(t *testing.T) {
	now := time.Unix(100, 0)
	c := testClient(t, Config{Seeds: []string{"s:1"}}, func() time.Time { return now })
	topo := &topology{nodeTimeout: 2 * time.Second}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(10*time.Second))
	defer cancel()
	require.Equal(t, uint32(0), c.nodeTimeout(ctx, topo, 0), "time to spare: the node's default")
	require.Equal(t, uint32(500), c.nodeTimeout(ctx, topo, 500), "the caller's Timeout")
	short, cancel2 := context.WithDeadline(context.Background(), now.Add(time.Second))
	defer cancel2()
	require.Equal(t, uint32(950), c.nodeTimeout(short, topo, 0), "less than the default left: what is left, less a margin")
	require.Equal(t, uint32(950), c.nodeTimeout(short, topo, 5000))
	require.Equal(t, uint32(0), c.nodeTimeout(context.Background(), topo, 0))
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := Config{Seeds: []string{"nohost"}, DialTimeout: -1, Routing: Routing(9), Retry: RetryPolicy{BudgetRatio: 2},
		NodeBackoff: time.Second, MaxNodeBackoff: time.Millisecond}.Validate()
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	for _, want := range []string{`seed "nohost"`, "dial_timeout", "routing 9", "budget_ratio", "max_node_backoff"} {
		require.Contains(t, err.Error(), want)
	}
	require.ErrorIs(t, Config{}.Validate(), cairn.ErrInvalidArgument, "no seed")
	require.NoError(t, Config{Seeds: []string{"127.0.0.1:7101"}}.Validate())
	require.NoError(t, DefaultConfig().Validate())
	require.Equal(t, DefaultConfig(), Config{Seeds: []string{"127.0.0.1:7101"}}.withDefaults())
}

func TestOptionsAreCheckedBeforeSending(t *testing.T) {
	now := time.Unix(100, 0)
	c := testClient(t, Config{Seeds: []string{"s:1"}}, func() time.Time { return now })
	c.topo.Store(buildTopology(ringState(t, 3), nil, now))
	ctx := context.Background()
	cases := map[string]func() error{
		"empty bucket": func() error { _, err := c.Get(ctx, "", []byte("k")); return err },
		"empty key":    func() error { _, err := c.Get(ctx, "b", nil); return err },
		"long key":     func() error { _, err := c.Get(ctx, "b", make([]byte, 101)); return err },
		"long value":   func() error { _, err := c.Put(ctx, "b", []byte("k"), make([]byte, 1001)); return err },
		"bad context": func() error {
			_, err := c.Put(ctx, "b", []byte("k"), nil, Causal([]byte{1, 0xc1}))
			return err
		},
		"r above n":    func() error { _, err := c.Get(ctx, "b", []byte("k"), R(4)); return err },
		"dw above n":   func() error { _, err := c.Delete(ctx, "b", []byte("k"), DW(4)); return err },
		"r zero":       func() error { _, err := c.Get(ctx, "b", []byte("k"), R(0)); return err },
		"bad symbolic": func() error { _, err := c.Get(ctx, "b", []byte("k"), PR(-9)); return err },
		"timeout":      func() error { _, err := c.Get(ctx, "b", []byte("k"), Timeout(-time.Second)); return err },
		"nil option":   func() error { _, err := c.Get(ctx, "b", []byte("k"), nil); return err },
		"nil update": func() error {
			_, err := c.Update(ctx, "b", []byte("k"), nil)
			return err
		},
	}
	for name, call := range cases {
		require.ErrorIs(t, call(), cairn.ErrInvalidArgument, name)
	}
	require.Zero(t, c.Stats().Calls, "nothing was sent")
}

// The client reads frames as large as the node says it may send, or, from
// a node too old to say, as large as its value and key limits imply; a
// node's figure never shrinks the limit, and an absurd one is capped.
func TestInstallRaisesTheFrameLimitToTheNodes(t *testing.T) {
	c := testClient(t, Config{Seeds: []string{"10.0.0.1:7101"}}, time.Now)
	resp := ringState(t, 3)
	resp.MaxValueSize, resp.MaxKeySize = 8<<20, 64<<10
	c.install(resp)
	require.Equal(t, 4*(8<<20+64<<10)+1<<20, c.pool.MaxFrame(), "an old node's implied limit")
	resp.MaxFrame = 40 << 20
	c.install(resp)
	require.Equal(t, 40<<20, c.pool.MaxFrame())
	resp.MaxFrame = 1 << 20
	c.install(resp)
	require.Equal(t, 40<<20, c.pool.MaxFrame(), "never shrunk")
	resp.MaxFrame = 1 << 40
	c.install(resp)
	require.Equal(t, maxClientFrame, c.pool.MaxFrame())
}
