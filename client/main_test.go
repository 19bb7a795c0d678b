package client_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/node"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// exampleNode serves the package examples: a one-node cluster started once
// for the test binary, as etcd's client examples use exampleEndpoints().
var exampleNode *node.Node

// exampleSeeds are the seed addresses the examples connect to.
func exampleSeeds() []string { return []string{exampleNode.Addr()} }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-client-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := nodeConfig("n1", dir)
	cfg.Admin = ""
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	exampleNode, err = node.Start(ctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the example node:", err)
		os.Exit(1)
	}
	code := m.Run()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	if err := exampleNode.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "stop the example node:", err)
		code = 1
	}
	cancel()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := findLeaks(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// findLeaks polls for goroutines left behind. memberlist's probe of a peer
// outlives its Shutdown by up to one probe interval (1 s with the "local"
// profile), longer than goleak waits on its own.
func findLeaks() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func nodeConfig(name, dir string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Name = name
	cfg.DataDir = dir
	// The nodes form a new cluster, and a node the tests add joins
	// holding nothing to wait for: no ownership transfer.
	cfg.Bootstrap = true
	cfg.Listen = "127.0.0.1:0"
	cfg.Gossip = "127.0.0.1:0"
	cfg.Admin = "127.0.0.1:0"
	cfg.GossipProfile = "local"
	cfg.RejoinInterval = 300 * time.Millisecond
	return cfg
}

// cluster is a set of in-process nodes on 127.0.0.1, each with its own
// pebble directory, real TCP and real memberlist.
type cluster struct {
	t     *testing.T
	dir   string // every node's data lives under it
	tune  func(*node.Config)
	nodes map[string]*node.Node
	names []string // every node started, stopped ones included
}

// startCluster starts k nodes n1..nk and waits until each sees all alive.
func startCluster(t *testing.T, k int, tune func(*node.Config)) *cluster {
	t.Helper()
	// The directory is made before the stop is registered, so it is
	// removed after the nodes stop (cleanups run last first).
	cl := &cluster{t: t, dir: t.TempDir(), tune: tune, nodes: map[string]*node.Node{}}
	t.Cleanup(cl.stopAll)
	for i := 1; i <= k; i++ {
		cl.add(fmt.Sprintf("n%d", i))
	}
	cl.waitMembers(k)
	return cl
}

// add starts a node that joins the first one.
func (cl *cluster) add(name string) *node.Node {
	cl.t.Helper()
	dir, err := os.MkdirTemp(cl.dir, name+"-")
	require.NoError(cl.t, err)
	cfg := nodeConfig(name, dir)
	if len(cl.names) > 0 {
		cfg.Join = []string{cl.nodes[cl.names[0]].GossipAddr()}
	}
	if cl.tune != nil {
		cl.tune(&cfg)
	}
	n, err := node.Start(cl.t.Context(), cfg)
	require.NoError(cl.t, err)
	cl.nodes[name] = n
	cl.names = append(cl.names, name)
	return n
}

// stop shuts a node down; it stays a ring member until removed.
func (cl *cluster) stop(name string) {
	n := cl.nodes[name]
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(cl.t, n.Shutdown(ctx))
	delete(cl.nodes, name)
}

func (cl *cluster) stopAll() {
	for _, name := range cl.names {
		cl.stop(name)
	}
}

func (cl *cluster) seeds() []string {
	var s []string
	for _, name := range cl.names {
		if n := cl.nodes[name]; n != nil {
			s = append(s, n.Addr())
		}
	}
	return s
}

// client returns a client of the cluster, closed at the end of the test.
func (cl *cluster) client(cfg client.Config) *client.Client {
	cl.t.Helper()
	if len(cfg.Seeds) == 0 {
		cfg.Seeds = cl.seeds()
	}
	c, err := client.New(cl.t.Context(), cfg)
	require.NoError(cl.t, err)
	cl.t.Cleanup(func() { _ = c.Close() })
	return c
}

// ask returns a client that talks to the named node only.
func (cl *cluster) ask(name string) *client.Client {
	return cl.client(client.Config{Seeds: []string{cl.nodes[name].Addr()}, Routing: client.SeedsOnly})
}

// agreed returns the ring version every running node reports once they all
// see members ring members, every running node among them alive.
func (cl *cluster) agreed(members int) (uint64, bool) {
	var version uint64
	for name := range cl.nodes {
		c, err := client.New(cl.t.Context(), client.Config{Seeds: []string{cl.nodes[name].Addr()}, Routing: client.SeedsOnly})
		if err != nil {
			return 0, false
		}
		ring, rerr := c.Ring(cl.t.Context())
		ms, merr := c.Members(cl.t.Context())
		_ = c.Close()
		if rerr != nil || merr != nil || len(ring.Members) != members || (version != 0 && ring.Version != version) {
			return 0, false
		}
		for _, m := range ms {
			if _, running := cl.nodes[m.Name]; running && !m.Alive {
				return 0, false
			}
		}
		version = ring.Version
	}
	return version, true
}

// waitMembers waits until every running node agrees on a ring of members
// members, and returns its version.
func (cl *cluster) waitMembers(members int) uint64 {
	cl.t.Helper()
	var version uint64
	require.Eventually(cl.t, func() bool {
		v, ok := cl.agreed(members)
		version = v
		return ok
	}, 30*time.Second, 20*time.Millisecond, "the nodes do not agree on a ring of %d", members)
	return version
}

// members asks the named node for its members.
func (cl *cluster) members(name string) ([]client.Member, error) {
	c, err := client.New(cl.t.Context(), client.Config{Seeds: []string{cl.nodes[name].Addr()}, Routing: client.SeedsOnly})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Members(cl.t.Context())
}

// waitDown waits until every running node sees name down.
func (cl *cluster) waitDown(name string) {
	cl.t.Helper()
	require.Eventually(cl.t, func() bool {
		for other := range cl.nodes {
			ms, err := cl.members(other)
			if err != nil {
				return false
			}
			for _, m := range ms {
				if m.Name == name && m.Alive {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "%s still seen alive", name)
}

// noKeepAlive leaves no idle connection (and goroutine) behind.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// metric sums a counter over every running node, read from /metrics.
func (cl *cluster) metric(name string) float64 {
	cl.t.Helper()
	var sum float64
	for _, n := range cl.nodes {
		req, err := http.NewRequestWithContext(cl.t.Context(), http.MethodGet, "http://"+n.AdminAddr()+"/metrics", nil)
		require.NoError(cl.t, err)
		resp, err := noKeepAlive.Do(req)
		require.NoError(cl.t, err)
		found := false
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				require.NoError(cl.t, err)
				sum += f
				found = true
			}
		}
		require.NoError(cl.t, sc.Err())
		_ = resp.Body.Close()
		require.True(cl.t, found, "%s has no metric %s", n.Name(), name)
	}
	return sum
}
