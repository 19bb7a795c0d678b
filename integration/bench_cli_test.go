package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/bench"
	"github.com/stretchr/testify/require"
)

// TestBenchThroughTheCLI runs `cairn bench` against a 3-process cluster,
// knowing only the data addresses, and checks what it reports: the
// requests, their cost to every node (learnt through the nodes' status
// answers and read from their /metrics), the result file and the chart.
func TestBenchThroughTheCLI(t *testing.T) {
	c := startCluster(t, 3)
	var addrs []string
	for _, p := range c.nodes {
		addrs = append(addrs, p.addr)
	}
	dir := t.TempDir()
	// SVG: the binary is built with -race, under which rasterising a PNG
	// takes seconds (the bench package's tests draw one).
	out, plot := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	args := []string{"bench", "--addr", strings.Join(addrs, ","), "--mix", "read=50,update=50", "--distribution", "uniform",
		// A run by time, not by count: the plot needs one reporting
		// interval (1 s) of points, however fast the cluster is.
		"--records", "300", "--duration", "2s", "--value-size", "100", "--concurrency", "4", "--out", out, "--plot", plot,
		"--admin-token", c.adminToken()} // the cost is read from the admin ports, which want an admin's token
	stdout := c.mustCLI(append(args, "-o", "json")...)
	var res bench.Result
	require.NoError(t, json.Unmarshal(stdout, &res), "%s", stdout)
	saved, err := os.ReadFile(out)
	require.NoError(t, err)
	require.JSONEq(t, string(stdout), string(saved), "-o json prints the result file")

	run := res.Run
	require.Positive(t, run.Requests)
	require.Zero(t, run.Errors)
	cost := run.Cost
	require.NotNil(t, cost)
	require.Empty(t, cost.Unavailable)
	require.Len(t, cost.Nodes, 3)
	for i, n := range cost.Nodes {
		require.Equal(t, c.node(n.Node).admin, n.Admin, "node %d", i)
		require.NotNil(t, n.CPUSeconds)
		require.NotNil(t, n.BytesSent)
	}
	require.Positive(t, cost.CPU.MicrosPerOp)
	// A read answers a 100-byte value; an update sends its object to two
	// other replicas.
	require.Greater(t, cost.Traffic.BytesSentPerOp, 100.0)
	require.Greater(t, cost.Traffic.BytesReceivedPerOp, 100.0)

	svg, err := os.ReadFile(plot)
	require.NoError(t, err)
	require.Contains(t, string(svg), "<svg")
	require.Contains(t, string(svg), "update: latency")

	// The summary says the same in a line.
	summary := c.mustCLI(append(args, "--skip-load")...)
	require.Contains(t, string(summary), "µs of node CPU and")
	require.Contains(t, string(summary), "per request (3 nodes:")
}

// TestBenchSaysWhyItHasNoCost checks that a node that cannot be read
// leaves the cost out with the reason, and does not fail the run.
func TestBenchSaysWhyItHasNoCost(t *testing.T) {
	c := startCluster(t, 3)
	c.stop(c.node("n3"))
	c.waitMembers(3, "n3")
	dir := t.TempDir()
	stdout := c.mustCLI("bench", "--addr", c.node("n1").addr, "--mix", "update=100", "--records", "50", "--ops", "100",
		"--value-size", "10", "--concurrency", "2", "--out", filepath.Join(dir, "r.json"), "-o", "json")
	var res bench.Result
	require.NoError(t, json.Unmarshal(stdout, &res), "%s", stdout)
	require.Zero(t, res.Run.Errors, "W=2 of 3 holds with one node down")
	require.Nil(t, res.Run.Cost.CPU)
	require.Nil(t, res.Run.Cost.Traffic)
	require.Contains(t, res.Run.Cost.Unavailable, "n3 is down")

	summary := c.mustCLI("bench", "--addr", c.node("n1").addr, "--mix", "update=100", "--records", "50", "--ops", "100",
		"--value-size", "10", "--concurrency", "2", "--out", filepath.Join(dir, "r.json"), "--skip-load")
	require.Contains(t, string(summary), "cost: not measured: could not read the nodes' counters when measuring started: n3 is down")
}
