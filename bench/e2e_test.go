package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/node"
	"github.com/stretchr/testify/require"
)

// startNode starts one in-process node, with an admin port or without.
func startNode(t *testing.T, admin bool) *node.Node {
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Gossip = "127.0.0.1:0"
	cfg.Admin = ""
	if admin {
		cfg.Admin = "127.0.0.1:0"
	}
	cfg.NoSyncWrites = true // this test measures the harness, not fsync
	n, err := node.Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, n.Shutdown(ctx))
	})
	return n
}

// TestAgainstARealNode runs workload A through the real client against one
// in-process node, then writes the result and both plots, as `cairn bench`
// does.
func TestAgainstARealNode(t *testing.T) {
	n := startNode(t, true)
	c, err := client.New(t.Context(), client.Config{Seeds: []string{n.Addr()}})
	require.NoError(t, err)
	defer c.Close()

	bc := DefaultConfig() // workload A
	bc.Records = 200
	bc.ValueSize = 100
	bc.Concurrency = 4
	bc.Duration = 0
	bc.Ops = 400
	bc.Interval = 50 * time.Millisecond
	bc.Settings.Targets = []string{n.Addr()}
	bc.Meter = &AdminMeter{Seeds: []string{n.Addr()}}
	res, err := Run(t.Context(), c, bc)
	require.NoError(t, err)

	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	require.NoError(t, res.WriteJSON(out))
	for _, p := range []string{"plot.svg"} { // PNG: TestPlotPNG, rasterising is slow under -race
		require.NoError(t, res.WritePlot(filepath.Join(dir, p)))
		st, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var got Result
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, int64(200), got.Load.Requests)
	require.Equal(t, int64(200), got.Load.OK, "one healthy node takes every insert: %+v", got.Load.Ops["insert"].Samples)
	require.Equal(t, int64(400), got.Run.Requests)
	require.Zero(t, got.Run.Errors, "errors: %+v %+v", got.Run.Ops["read"].Samples, got.Run.Ops["update"].Samples)
	read, update := got.Run.Ops["read"], got.Run.Ops["update"]
	require.Equal(t, got.Run.Requests, read.Requests+update.Requests)
	require.Positive(t, read.Requests)
	require.Positive(t, update.Requests)
	require.Zero(t, read.NotFound, "every read addresses a loaded key")
	require.Positive(t, read.Latency.P50)
	require.LessOrEqual(t, read.Latency.P50, read.Latency.P99)
	require.LessOrEqual(t, read.Latency.P99, read.Latency.Max)

	// The node's own counters, learnt through its status: every read
	// answer carried a 100-byte value out, every update one in.
	cost := got.Run.Cost
	require.NotNil(t, cost)
	require.Empty(t, cost.Unavailable)
	require.Len(t, cost.Nodes, 1)
	require.Equal(t, n.AdminAddr(), cost.Nodes[0].Admin)
	require.Positive(t, cost.CPU.MicrosPerOp)
	require.Greater(t, cost.Traffic.BytesSent, float64(read.Requests*100))
	require.Greater(t, cost.Traffic.BytesReceived, float64(update.Requests*100))
	require.InDelta(t, cost.Traffic.BytesSent/float64(got.Run.Requests), cost.Traffic.BytesSentPerOp, 1e-9)

	// The updates carried contexts, so siblings are bounded by the
	// concurrency of the updates, not by how many there were.
	for i := range uint64(bc.Records) {
		obj, err := c.Get(t.Context(), bc.Bucket, keyName(nil, i))
		require.NoError(t, err)
		require.True(t, obj.Found)
		require.LessOrEqual(t, len(obj.Siblings), bc.Concurrency, "key %d", i)
	}
}

// TestMeterSaysWhichNodeHasNoAdminPort checks the reason a cost is missing
// names the node that cannot be read.
func TestMeterSaysWhichNodeHasNoAdminPort(t *testing.T) {
	n := startNode(t, false)
	m := &AdminMeter{Seeds: []string{n.Addr()}}
	_, err := m.Read(t.Context())
	require.ErrorContains(t, err, n.Name()+" serves no admin HTTP port")

	// Named by hand, the ports are read without asking the cluster.
	withAdmin := startNode(t, true)
	m = &AdminMeter{Seeds: []string{n.Addr()}, Admin: []string{withAdmin.AdminAddr()}}
	got, err := m.Read(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.True(t, got[0].HasCPU)
	require.True(t, got[0].HasBytes)
}
