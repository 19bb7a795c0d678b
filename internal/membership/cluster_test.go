package membership

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/faultnet"
	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// convergeTimeout is generous: the machine is small and shared, and -race
// slows memberlist's timers' work several times over.
const convergeTimeout = 30 * time.Second

// eventually polls cond until it returns nil or the deadline passes, then
// fails with cond's last complaint.
func eventually(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(convergeTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %v: %v", convergeTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fastMemberlist is faultnet's loopback timings with dead nodes forgotten
// almost at once, so that only the rejoin loop can bring the two sides of a
// partition back together.
func fastMemberlist(c *memberlist.Config) {
	faultnet.FastTimings(c)
	c.GossipToTheDeadTime = 100 * time.Millisecond
}

// cluster is a set of in-process nodes on 127.0.0.1.
type cluster struct {
	t     *testing.T
	net   *faultnet.Net
	nodes map[string]*Membership
	mu    sync.Mutex
	saved map[string][]byte // name -> last persisted state
	calls map[string]int    // name -> OnChange calls
	leave time.Duration     // LeaveTimeout of the nodes; zero: -1, no leave
}

func (c *cluster) onChanges(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

// bareCluster is a cluster whose nodes the test starts and stops itself.
func bareCluster(t *testing.T) *cluster {
	return &cluster{t: t, net: &faultnet.Net{}, nodes: map[string]*Membership{}, saved: map[string][]byte{}, calls: map[string]int{}}
}

// newCluster is a cluster that shuts its nodes down and checks for leaked
// goroutines when the test ends.
func newCluster(t *testing.T) *cluster {
	// Registered first, so it runs after every node's shutdown.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := bareCluster(t)
	t.Cleanup(func() {
		for _, m := range c.nodes {
			require.NoError(t, m.Shutdown())
		}
	})
	return c
}

func (c *cluster) config(name, bind string, join []string) Config {
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.Cluster = "test"
	cfg.Partitions = 64
	cfg.BindAddr = bind
	cfg.DataAddr = "127.0.0.1:1" + name[1:]
	cfg.Join = join
	cfg.RejoinInterval = 300 * time.Millisecond
	cfg.LeaveTimeout = cmp.Or(c.leave, -1)
	cfg.Persist = func(state []byte) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.saved[name] = state
		return nil
	}
	cfg.OnChange = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls[name]++
	}
	cfg.Memberlist = func(mc *memberlist.Config) {
		fastMemberlist(mc)
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger,
		})
		require.NoError(c.t, err)
		mc.Transport = &faultnet.Transport{NetTransport: nt, Net: c.net, Self: fmt.Sprintf("%s:%d", mc.BindAddr, nt.GetAutoBindPort())}
	}
	if testing.Verbose() {
		cfg.LogOutput = testWriter{c.t, name}
	}
	return cfg
}

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, p)
	return len(p), nil
}

func (c *cluster) start(cfg Config) *Membership {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg)
	require.NoError(c.t, err)
	c.nodes[cfg.Name] = m
	return m
}

// grow starts k nodes n1..nk, every one but the first joining n1.
func (c *cluster) grow(k int) {
	seed := c.start(c.config("n1", "127.0.0.1:0", nil))
	for i := 2; i <= k; i++ {
		c.start(c.config(fmt.Sprintf("n%d", i), "127.0.0.1:0", []string{seed.GossipAddr()}))
	}
}

func (c *cluster) stop(name string) {
	require.NoError(c.t, c.nodes[name].Shutdown())
	delete(c.nodes, name)
}

func (c *cluster) persisted(name string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saved[name]
}

// converged reports why the running nodes do not yet agree on one ring
// state, over members, and all see each other alive.
func (c *cluster) converged(members []string) error {
	var first *Membership
	for name, m := range c.nodes {
		var names []string
		for _, e := range m.Members() {
			names = append(names, e.Name)
		}
		if !slices.Equal(names, members) {
			return fmt.Errorf("%s knows %v, want %v", name, names, members)
		}
		if first == nil {
			first = m
		} else if !slices.Equal(m.Members(), first.Members()) {
			return fmt.Errorf("%s has %v, %s has %v", name, m.Members(), first.cfg.Name, first.Members())
		}
		if m.Ring().Version() != first.Ring().Version() {
			return fmt.Errorf("%s has ring %x, %s has %x", name, m.Ring().Version(), first.cfg.Name, first.Ring().Version())
		}
		for other := range c.nodes {
			if !m.Alive(other) {
				return fmt.Errorf("%s does not see %s alive", name, other)
			}
		}
	}
	return nil
}

func names(k int) []string {
	var out []string
	for i := 1; i <= k; i++ {
		out = append(out, fmt.Sprintf("n%d", i))
	}
	return out
}

func TestClusterForms(t *testing.T) {
	for _, k := range []int{3, 5} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			c := newCluster(t)
			c.grow(k)
			eventually(t, func() error { return c.converged(names(k)) })
			r := c.nodes["n1"].Ring()
			require.Equal(t, names(k), r.Members())
			for _, m := range c.nodes {
				for _, e := range m.Members() {
					require.Equal(t, StatusActive, e.Status)
					require.Equal(t, uint64(1), e.Version, "a fresh member's entry never changed")
					addr, ok := m.Addr(e.Name)
					require.True(t, ok)
					require.Equal(t, c.nodes[e.Name].cfg.DataAddr, addr)
					require.Equal(t, c.nodes[e.Name].GossipAddr(), e.Gossip)
				}
			}
			// Every node advertises the converged ring in its meta, so no
			// live peer looks behind to the rejoin loop.
			eventually(t, func() error {
				for name, m := range c.nodes {
					m.liveMu.RLock()
					peers := maps.Clone(m.peerRing)
					m.liveMu.RUnlock()
					for peer := range c.nodes {
						if v, ok := peers[peer]; peer != name && (!ok || v != r.Version()) {
							return fmt.Errorf("%s sees %s advertise ring %x (known %v), want %x", name, peer, v, ok, r.Version())
						}
					}
					if targets := m.rejoinTargets(); len(targets) > 0 {
						return fmt.Errorf("%s would rejoin %v", name, targets)
					}
				}
				return nil
			})
			// Every node persisted the converged state.
			eventually(t, func() error {
				want := c.persisted("n1")
				for name := range c.nodes {
					if got := c.persisted(name); string(got) != string(want) {
						return fmt.Errorf("%s persisted a different state than n1", name)
					}
				}
				msg, err := decodeState(want)
				if err != nil || len(msg.members) != k {
					return fmt.Errorf("n1 persisted %d members (%v)", len(msg.members), err)
				}
				return nil
			})
		})
	}
}

func TestDeadMemberStaysAndComesBack(t *testing.T) {
	t.Run("crash", func(t *testing.T) { testDeadMemberStaysAndComesBack(t, -1) })
	t.Run("leave", func(t *testing.T) { testDeadMemberStaysAndComesBack(t, DefaultLeaveTimeout) })
}

// testDeadMemberStaysAndComesBack stops n3, announcing it or not as leave
// says, and brings it back under the same name, port and persisted state.
func testDeadMemberStaysAndComesBack(t *testing.T, leave time.Duration) {
	c := newCluster(t)
	c.leave = leave
	c.grow(3)
	eventually(t, func() error { return c.converged(names(3)) })
	ringVersion := c.nodes["n1"].Ring().Version()
	before := c.nodes["n1"].Members()
	n3 := c.nodes["n3"]
	gossip, cfg := n3.GossipAddr(), n3.cfg

	calls := c.onChanges("n1")
	c.stop("n3")
	eventually(t, func() error {
		if c.onChanges("n1") == calls {
			return errors.New("n1 was not told of n3's death")
		}
		for _, name := range []string{"n1", "n2"} {
			if c.nodes[name].Alive("n3") {
				return fmt.Errorf("%s still sees n3 alive", name)
			}
		}
		return nil
	})
	for _, name := range []string{"n1", "n2"} {
		m := c.nodes[name]
		require.Equal(t, before, m.Members(), "%s: a dead member stays a member", name)
		require.Equal(t, ringVersion, m.Ring().Version(), "%s: a dead member stays in the ring", name)
		require.Contains(t, m.Ring().Members(), "n3")
	}

	cfg.BindAddr = gossip
	cfg.LeaveTimeout = -1
	cfg.State = c.persisted("n3")
	require.NotNil(t, cfg.State)
	c.start(cfg)
	eventually(t, func() error { return c.converged(names(3)) })
	for name, m := range c.nodes {
		require.Equal(t, before, m.Members(), "%s: a restart with the same identity changes no entry", name)
		require.Equal(t, ringVersion, m.Ring().Version(), name)
	}
}

func TestPartitionHeals(t *testing.T) {
	c := newCluster(t)
	c.grow(5)
	all := names(5)
	eventually(t, func() error { return c.converged(all) })
	ringVersion := c.nodes["n1"].Ring().Version()
	left, right := all[:2], all[2:]
	addrs := func(group []string) []string {
		var out []string
		for _, n := range group {
			out = append(out, c.nodes[n].GossipAddr())
		}
		return out
	}

	c.net.Split(addrs(left), addrs(right))
	// Both sides must declare the other dead, memberlist's own way back.
	eventually(t, func() error {
		for _, pair := range [][2][]string{{left, right}, {right, left}} {
			for _, a := range pair[0] {
				for _, b := range pair[1] {
					if c.nodes[a].Alive(b) {
						return fmt.Errorf("%s still sees %s alive", a, b)
					}
				}
			}
		}
		return nil
	})
	for name, m := range c.nodes {
		require.Equal(t, ringVersion, m.Ring().Version(), "%s: the partition must not change the ring", name)
		require.Len(t, m.Members(), 5, name)
	}
	// Hold the partition past GossipToTheDeadTime and a few probe rounds, so
	// memberlist has forgotten the other side and gossip to the dead cannot
	// heal it: the network stays down for a while, as a real one does.
	time.Sleep(time.Second)

	c.net.Heal()
	eventually(t, func() error { return c.converged(all) })
	for name, m := range c.nodes {
		require.Equal(t, ringVersion, m.Ring().Version(), name)
	}
}

func TestRemovedMemberLeavesTheRing(t *testing.T) {
	c := newCluster(t)
	c.grow(3)
	eventually(t, func() error { return c.converged(names(3)) })

	require.NoError(t, c.nodes["n1"].Remove("n3"))
	removed := func() error {
		for name, m := range c.nodes {
			if slices.Contains(m.Ring().Members(), "n3") {
				return fmt.Errorf("%s still has n3 in its ring", name)
			}
			if i := slices.IndexFunc(m.Members(), func(e Member) bool { return e.Name == "n3" }); i < 0 || m.Members()[i].Status != StatusRemoved {
				return fmt.Errorf("%s does not list n3 as removed", name)
			}
		}
		return nil
	}
	eventually(t, removed)
	require.Equal(t, []string{"n1", "n2"}, c.nodes["n2"].Ring().Members())
	require.True(t, c.nodes["n1"].Alive("n3"), "removal is not death: n3 still runs")
	require.NoError(t, c.nodes["n2"].Remove("n3"), "removing twice is a no-op")
	require.ErrorContains(t, c.nodes["n2"].Remove("nobody"), "not found")

	// n3 comes back with no memory of its removal: it stays removed.
	cfg := c.nodes["n3"].cfg
	c.stop("n3")
	cfg.State = nil
	n3 := c.start(cfg)
	eventually(t, func() error {
		if err := removed(); err != nil {
			return err
		}
		if !c.nodes["n1"].Alive("n3") {
			return errors.New("n1 does not see n3 alive")
		}
		return nil
	})
	require.Zero(t, n3.Stats().Reasserts, "a removed node must not fight its removal")
	require.Equal(t, c.nodes["n1"].Members(), n3.Members())
}

func TestStartAloneWhenSeedsAreUnreachable(t *testing.T) {
	defer goleak.VerifyNone(t)
	// A port nobody listens on: bind one, note it, close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())

	c := bareCluster(t)
	cfg := c.config("n1", "127.0.0.1:0", []string{dead})
	changed := make(chan struct{}, 1)
	cfg.OnChange = func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	m, err := Start(context.Background(), cfg)
	require.NoError(t, err, "unreachable seeds are not an error")
	<-changed
	require.Equal(t, []string{"n1"}, m.Ring().Members())
	require.True(t, m.Alive("n1"))
	require.Equal(t, []string{dead}, m.rejoinTargets(), "the seed is retried")
	require.NoError(t, m.Shutdown())
	require.NoError(t, m.Shutdown(), "Shutdown is idempotent")
}

func TestStartRefusesBadInput(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.Validate()
	require.ErrorContains(t, err, "name")
	require.ErrorContains(t, err, "bind address")
	require.ErrorContains(t, err, "data address")

	cfg = bareCluster(t).config("n1", "127.0.0.1:0", nil)
	cfg.Partitions = 48
	_, err = Start(context.Background(), cfg)
	require.ErrorContains(t, err, "power of two")

	cfg.Partitions = 64
	cfg.State = encodeState("another", 64, []Member{entry("n1", StatusActive, 1)})
	_, err = Start(context.Background(), cfg)
	require.ErrorIs(t, err, errMalformedState, "state persisted by another cluster")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Start(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
}
