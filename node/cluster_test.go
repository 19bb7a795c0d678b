package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/faultnet"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCluster is a set of in-process nodes on 127.0.0.1, each with its own
// pebble directory, real TCP and real memberlist.
type testCluster struct {
	t     *testing.T
	cfgs  map[string]Config
	nodes map[string]*Node
	names []string
}

// startCluster starts k nodes n1..nk; tune adjusts every node's config.
func startCluster(t *testing.T, k int, tune func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, cfgs: map[string]Config{}, nodes: map[string]*Node{}}
	for i := 1; i <= k; i++ {
		name := fmt.Sprintf("n%d", i)
		cfg := DefaultConfig()
		cfg.Name = name
		cfg.DataDir = t.TempDir()
		cfg.Listen = "127.0.0.1:0"
		cfg.Gossip = "127.0.0.1:0"
		cfg.Admin = ""
		cfg.RejoinInterval = 300 * time.Millisecond
		cfg.tuneMemberlist = faultnet.FastTimings
		cfg.Logger = zaptest.NewLogger(t).Named(name)
		cfg.Bootstrap = true // a new cluster: nothing to transfer
		if i > 1 {
			cfg.Join = []string{tc.nodes["n1"].GossipAddr()}
		}
		if tune != nil {
			tune(&cfg)
		}
		n, err := Start(t.Context(), cfg)
		require.NoError(t, err)
		// A restart must find the node on the same ports.
		cfg.Listen, cfg.Gossip = n.Addr(), n.GossipAddr()
		if n.AdminAddr() != "" {
			cfg.Admin = n.AdminAddr()
		}
		tc.cfgs[name], tc.nodes[name] = cfg, n
		tc.names = append(tc.names, name)
	}
	t.Cleanup(tc.stopAll)
	tc.waitAlive(tc.names...)
	return tc
}

func (tc *testCluster) stopAll() {
	for _, name := range tc.names {
		tc.stop(name)
	}
}

// stop shuts a node down cleanly; it stays a ring member.
func (tc *testCluster) stop(name string) {
	n := tc.nodes[name]
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(tc.t, n.Shutdown(ctx))
	delete(tc.nodes, name)
}

// restart starts a stopped node again with the same name, data and ports.
func (tc *testCluster) restart(name string) {
	cfg := tc.cfgs[name]
	cfg.Join = nil
	for _, other := range tc.names {
		if other != name {
			cfg.Join = append(cfg.Join, tc.cfgs[other].Gossip)
		}
	}
	var n *Node
	require.Eventually(tc.t, func() bool {
		var err error
		n, err = Start(tc.t.Context(), cfg)
		return err == nil // the ports may take a moment to be free again
	}, 10*time.Second, 50*time.Millisecond)
	tc.nodes[name] = n
}

// waitAlive waits until every running node sees the named nodes alive and
// all of them in its ring.
func (tc *testCluster) waitAlive(names ...string) {
	tc.t.Helper()
	require.Eventually(tc.t, func() bool {
		for _, n := range tc.nodes {
			if len(n.ring().Members()) != len(tc.names) {
				return false
			}
			for _, name := range names {
				if !n.members.Alive(name) {
					return false
				}
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "cluster did not form")
}

// waitDead waits until every running node sees the named node down.
func (tc *testCluster) waitDead(name string) {
	tc.t.Helper()
	require.Eventually(tc.t, func() bool {
		for _, n := range tc.nodes {
			if n.members.Alive(name) {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "%s still seen alive", name)
}

// client returns a client that talks to the named node only: these tests
// choose the coordinator.
func (tc *testCluster) client(name string) *client.Client {
	tc.t.Helper()
	c, err := client.New(tc.t.Context(), client.Config{Seeds: []string{tc.nodes[name].Addr()}, Routing: client.SeedsOnly})
	require.NoError(tc.t, err)
	tc.t.Cleanup(func() { _ = c.Close() })
	return c
}

// keyOwnedBy finds a key whose n primaries include node (and, when not "",
// exclude notNode).
func (tc *testCluster) keyOwnedBy(n int, node, notNode string) []byte {
	tc.t.Helper()
	var r = tc.nodes[tc.names[0]].ring()
	for i := range 100000 {
		key := []byte(fmt.Sprintf("key-%d", i))
		primaries, _ := r.Preference(r.KeyPartition("b", key), n)
		has, hasNot := false, false
		for _, p := range primaries {
			has = has || p == node
			hasNot = hasNot || p == notNode
		}
		if has && !hasNot {
			return key
		}
	}
	tc.t.Fatalf("no key owned by %s", node)
	return nil
}

// mustUpdate takes dvv's Update in a history whose counters cannot come
// near the end of their range, so an error is a bug in the test.
func mustUpdate(o dvv.Object, err error) dvv.Object {
	if err != nil {
		panic(err)
	}
	return o
}
