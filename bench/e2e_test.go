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

// TestAgainstARealNode runs workload A through the real client against one
// in-process node, then writes the result and both plots, as `cairn bench`
// does.
func TestAgainstARealNode(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Gossip = "127.0.0.1:0"
	cfg.Admin = ""
	cfg.NoSyncWrites = true // this test measures the harness, not fsync
	n, err := node.Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, n.Shutdown(ctx))
	})
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
	res, err := Run(t.Context(), c, bc)
	require.NoError(t, err)

	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	require.NoError(t, res.WriteJSON(out))
	for _, p := range []string{"plot.svg"} { // PNG: see TestPlotPNG
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

	// The updates carried contexts, so siblings are bounded by the
	// concurrency of the updates, not by how many there were.
	for i := range uint64(bc.Records) {
		obj, err := c.Get(t.Context(), bc.Bucket, keyName(nil, i))
		require.NoError(t, err)
		require.True(t, obj.Found)
		require.LessOrEqual(t, len(obj.Siblings), bc.Concurrency, "key %d", i)
	}
}
