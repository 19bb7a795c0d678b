package integration

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// nodeStatus is what `cairn status -o json` says of reaping and disk.
type nodeStatus struct {
	DiskBytes   int64  `json:"disk_bytes"`
	ObjectBytes int64  `json:"object_bytes"`
	Reaped      uint64 `json:"reaped"`
	ReapPaused  string `json:"reap_paused"`
}

func (c *cluster) status(p *proc) nodeStatus {
	c.t.Helper()
	var s nodeStatus
	require.NoError(c.t, json.Unmarshal(c.mustCLI("status", "--addr", p.addr, "-o", "json"), &s))
	return s
}

// reapedTotal sums the tombstones the running nodes reaped since they
// started.
func (c *cluster) reapedTotal() (total uint64) {
	for _, p := range c.nodes {
		if c.running(p) {
			total += c.status(p).Reaped
		}
	}
	return total
}

func reapTestKey(i int) []byte { return []byte(fmt.Sprintf("gone-%06d", i)) }

// writeThenDelete puts each key and deletes it with the context the put
// answered, from workers goroutines.
func writeThenDelete(t *testing.T, sdk *client.Client, bucket string, keys, workers int, value []byte, opts ...client.Option) {
	t.Helper()
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := w; i < keys; i += workers {
				ctx, err := sdk.Put(t.Context(), bucket, reapTestKey(i), value, opts...)
				if err != nil {
					return err
				}
				if _, err := sdk.Delete(t.Context(), bucket, reapTestKey(i), append(opts, client.Causal(ctx))...); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
}

// requireNoneFound reads every step-th key through each running node with
// R=all (R=2 when a node is down): none is found.
func requireNoneFound(t *testing.T, c *cluster, bucket string, keys, step int) {
	t.Helper()
	r := client.All
	for _, p := range c.nodes {
		if !c.running(p) {
			r = client.Quorum(2)
		}
	}
	for _, p := range c.nodes {
		if !c.running(p) {
			continue
		}
		sdk, err := client.New(t.Context(), c.seedsOnlyConfig(p.addr))
		require.NoError(t, err)
		for i := 0; i < keys; i += step {
			obj, err := sdk.Get(t.Context(), bucket, reapTestKey(i), client.R(r))
			require.NoError(t, err)
			require.False(t, obj.Found, "%s reads deleted key %s as found", p.name, reapTestKey(i))
		}
		require.NoError(t, sdk.Close())
	}
}

// Deleting 100,000 keys in a bucket with a short delete grace gives the
// disk back: every replica reaps its tombstones, the object keyspace is
// compacted, and no deleted key reads as found.
func TestReapReclaimsTheSpaceOfDeletedKeys(t *testing.T) {
	const keys = 100_000
	c := startClusterOf(t, plainBin(t), 3, "--reap-interval", "1s", "--max-request-timeout", "2s")
	// The grace is set once every key is deleted, so that the whole reap
	// is measured.
	c.mustCLI("bucket", "create", "--addr", c.nodes[0].addr, "gone")
	c.mustCLI("bucket", "create", "--addr", c.nodes[0].addr, "live")
	sdk, err := client.New(t.Context(), c.clientConfig(c.nodes[0].addr))
	require.NoError(t, err)
	defer sdk.Close()
	value := make([]byte, 100)
	_, err = rand.Read(value) // incompressible, as most values are
	require.NoError(t, err)
	for i := range 1000 {
		_, err := sdk.Put(t.Context(), "live", reapTestKey(i), value)
		require.NoError(t, err)
	}
	start := time.Now()
	writeThenDelete(t, sdk, "gone", keys, 32, value)
	t.Logf("wrote and deleted %d keys in %s", keys, time.Since(start).Round(time.Millisecond))

	// A restart moves what the memtables held into tables (pebble flushes
	// the log it replays), so the tombstones are on disk, as they are on
	// any node that has run for a while.
	restart := func() {
		for _, p := range c.nodes {
			c.stop(p)
		}
		for _, p := range c.nodes {
			c.start(p)
		}
		for _, p := range c.nodes {
			c.waitReady(p)
		}
		c.waitMembers(3)
	}
	restart()
	sizes := func() (disk, objects int64) {
		for _, p := range c.nodes {
			s := c.status(p)
			disk += s.DiskBytes
			objects += s.ObjectBytes
		}
		return disk, objects
	}
	diskBefore, objectsBefore := sizes()
	c.mustCLI("bucket", "set", "--addr", c.nodes[0].addr, "gone", "--delete-grace", "2s")
	reapStart := time.Now()
	require.Eventually(t, func() bool { return c.reapedTotal() >= 3*keys }, 5*time.Minute, time.Second,
		"every replica reaps every tombstone")
	took := time.Since(reapStart)
	var diskAfter, objectsAfter int64
	require.Eventually(t, func() bool {
		diskAfter, objectsAfter = sizes()
		return objectsAfter < objectsBefore/10
	}, 2*time.Minute, time.Second, "the objects' space comes back: %d bytes before, %d now", objectsBefore, objectsAfter)
	reaped := c.reapedTotal()
	// The write-ahead log's files are recycled at the memtable's size
	// whatever the data; after a restart they hold only what was not
	// flushed, as before the reap.
	restart()
	diskRestarted, objectsRestarted := sizes()
	t.Logf("reaped %d tombstones (3 replicas of %d keys) in %s: %.0f keys/s across the cluster; "+
		"objects' tables %d -> %d bytes (%d after a restart), disk %d -> %d bytes (%d after a restart), 3 nodes",
		reaped, keys, took.Round(time.Millisecond), float64(keys)/took.Seconds(),
		objectsBefore, objectsAfter, objectsRestarted, diskBefore, diskAfter, diskRestarted)
	require.Less(t, diskRestarted, diskBefore, "the disk is smaller than with the tombstones")
	requireNoneFound(t, c, "gone", keys, 97)
	for i := range 1000 {
		obj, err := sdk.Get(t.Context(), "live", reapTestKey(i))
		require.NoError(t, err)
		require.True(t, obj.Found, "a live key of another bucket is kept")
	}
}

// The orders in which a reaped key could come back, across processes:
// a primary down during the delete and back after the grace (it holds
// the deleted values), and a node restarted on a copy of its data
// directory taken before the reap.
func TestReapDangerousOrders(t *testing.T) {
	const keys = 300
	c := startCluster(t, 3, "--reap-interval", "500ms", "--max-request-timeout", "2s")
	c.mustCLI("bucket", "create", "--addr", c.nodes[0].addr, "gone", "--delete-grace", "2s")
	n1, n3 := c.node("n1"), c.node("n3")
	sdk, err := client.New(t.Context(), c.seedsOnlyConfig(n1.addr))
	require.NoError(t, err)
	defer sdk.Close()
	for i := range keys {
		_, err := sdk.Put(t.Context(), "gone", reapTestKey(i), []byte("v"), client.W(client.All))
		require.NoError(t, err)
	}

	// n3 is down for the delete and the grace: it is asked in every
	// check, so nothing is reaped, and the status says why.
	c.stop(n3)
	backup := t.TempDir()
	require.NoError(t, exec.Command("cp", "-a", n3.data+"/.", backup).Run())
	c.waitMembers(3, "n3")
	for i := range keys {
		obj, err := sdk.Get(t.Context(), "gone", reapTestKey(i), client.R(2))
		require.NoError(t, err)
		_, err = sdk.Delete(t.Context(), "gone", reapTestKey(i), client.Causal(obj.Context), client.W(2))
		require.NoError(t, err)
	}
	time.Sleep(3 * time.Second)
	require.Eventually(t, func() bool { return c.status(n1).ReapPaused == "member n3 is down" }, 10*time.Second, 100*time.Millisecond)
	require.Zero(t, c.reapedTotal(), "nothing is reaped while a member is down")

	// Back with the deleted values: anti-entropy gives it the tombstones,
	// then every copy is reaped. No deleted key is found meanwhile.
	c.start(n3)
	c.waitReady(n3)
	c.waitMembers(3)
	deadline := time.Now().Add(2 * time.Minute)
	for c.reapedTotal() < 3*keys {
		require.True(t, time.Now().Before(deadline), "reaped %d of %d copies", c.reapedTotal(), 3*keys)
		requireNoneFound(t, c, "gone", keys, 7)
	}
	requireNoneFound(t, c, "gone", keys, 1)

	// n3 restarted on its directory as it was before the delete: the
	// peers recorded the checks it answered since, and it refuses.
	c.stop(n3)
	require.NoError(t, os.RemoveAll(n3.data))
	require.NoError(t, os.Rename(backup, n3.data))
	c.start(n3)
	select {
	case <-n3.exit:
	case <-time.After(60 * time.Second):
		t.Fatal("n3 started on a copy of its directory older than its reap checks")
	}
	log, err := os.ReadFile(n3.log)
	require.NoError(t, err)
	require.Contains(t, string(log), "restored from an old copy")
	requireNoneFound(t, c, "gone", keys, 1)

	// Started empty, it rejoins and takes its data from its peers.
	require.NoError(t, os.RemoveAll(n3.data))
	c.start(n3)
	c.waitReady(n3)
	c.waitMembers(3)
	requireNoneFound(t, c, "gone", keys, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = sdk.Put(ctx, "gone", reapTestKey(0), []byte("again"), client.W(client.All))
	require.NoError(t, err)
	obj, err := sdk.Get(ctx, "gone", reapTestKey(0), client.R(client.All))
	require.NoError(t, err)
	require.True(t, obj.Found)
}

// A fallback holding a hint of a deleted key's older value: while it
// keeps the hint (its handoff is off), the key is kept on every primary;
// once the hint is delivered, and absorbed by the tombstone, the key is
// reaped, and it never reads as found.
func TestReapWaitsForAHintOfTheKey(t *testing.T) {
	c := startCluster(t, 4, "--reap-interval", "500ms", "--max-request-timeout", "2s")
	c.mustCLI("bucket", "create", "--addr", c.nodes[0].addr, "gone", "--delete-grace", "2s")
	n1, n3, n4 := c.node("n1"), c.node("n3"), c.node("n4")
	r, err := ring.New(ring.DefaultPartitions, members(4))
	require.NoError(t, err)
	var keys []string
	for i := 0; len(keys) < 20; i++ {
		key := string(reapTestKey(i))
		primaries, _ := r.Preference(r.KeyPartition("gone", []byte(key)), 3)
		if !contains(primaries, "n4") {
			keys = append(keys, key)
		}
	}
	// n4 keeps its hints.
	c.stop(n4)
	handoffOn := n4.args
	n4.args = append(slices.Clone(n4.args), "--hinted-handoff=false")
	c.start(n4)
	c.waitReady(n4)
	c.waitMembers(4)

	sdk := c.seedsOnly(n1.addr)
	// n1 marked n4 down when the restart refused its connections; the
	// hints below need n1 to take it for up again.
	var probe string
	for i := 0; probe == ""; i++ {
		key := fmt.Sprintf("probe-%d", i)
		if primaries, _ := r.Preference(r.KeyPartition("gone", []byte(key)), 3); contains(primaries, "n4") {
			probe = key
		}
	}
	require.Eventually(t, func() bool {
		_, err := sdk.Put(t.Context(), "gone", []byte(probe), []byte("p"), client.W(client.All))
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "n1 writes to n4 again")
	c.stop(n3)
	c.waitMembers(4, "n3")
	for _, key := range keys {
		// W=3 with n3 down: n4 stands in for it, with a hint.
		require.Eventually(t, func() bool {
			_, err := sdk.Put(t.Context(), "gone", []byte(key), []byte("old"), client.W(3))
			return err == nil
		}, 30*time.Second, 200*time.Millisecond, "a write with n4 standing in for n3")
	}
	c.start(n3)
	c.waitReady(n3)
	c.waitMembers(4)
	for _, key := range keys {
		obj, err := sdk.Get(t.Context(), "gone", []byte(key), client.R(client.All))
		require.NoError(t, err)
		_, err = sdk.Delete(t.Context(), "gone", []byte(key), client.Causal(obj.Context), client.W(client.All), client.NoSloppy())
		require.NoError(t, err)
	}
	held := func(key string) (primaries, hints int) {
		for _, cp := range c.replicas(n1.addr, "gone", key) {
			switch {
			case cp.Found && cp.Primary:
				primaries++
			case cp.Found:
				hints++
			}
		}
		return primaries, hints
	}
	time.Sleep(4 * time.Second) // past the grace, several passes
	pending, _ := c.hintsHeld()
	require.Positive(t, pending["n4->n3"], "n4 still holds its hints for n3: %v", pending)
	for _, key := range keys {
		primaries, hints := held(key)
		require.Equal(t, 3, primaries, "%s is kept on every primary while n4 holds a hint of it", key)
		require.Equal(t, 1, hints, "%s: n4's hint", key)
	}
	for _, key := range keys {
		obj, err := sdk.Get(t.Context(), "gone", []byte(key), client.R(client.All))
		require.NoError(t, err)
		require.False(t, obj.Found, "%s reads as found", key)
	}

	// Handoff on: the hints go to n3, where the tombstone absorbs them;
	// then the keys are reaped everywhere.
	c.stop(n4)
	n4.args = handoffOn
	c.start(n4)
	c.waitReady(n4)
	c.waitMembers(4)
	require.Eventually(t, func() bool {
		for _, key := range keys {
			obj, err := sdk.Get(t.Context(), "gone", []byte(key), client.R(client.All))
			require.NoError(t, err)
			require.False(t, obj.Found, "%s reads as found", key)
			if p, h := held(key); p+h > 0 {
				return false
			}
		}
		return true
	}, 2*time.Minute, 500*time.Millisecond, "the keys are reaped once the hints are delivered")
}
