package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// reapQuickly reaps every 100 ms, on a small ring, with requests that
// last 2 s at most (the grace is never shorter).
func reapQuickly(c *Config) {
	c.Partitions = 64
	c.Reap.Interval = 100 * time.Millisecond
	c.MaxRequestTimeout = c.RequestTimeout
}

// createGraceBucket gives bucket a delete grace through via and waits
// until every running node applies it.
func (tc *testCluster) createGraceBucket(via, bucket, grace string) {
	tc.t.Helper()
	_, err := tc.client(via).CreateBucket(tc.t.Context(), bucket, client.BucketChange{DeleteGrace: &grace})
	require.NoError(tc.t, err)
	require.Eventually(tc.t, func() bool {
		for _, n := range tc.nodes {
			if n.bucketProps(bucket).DeleteGrace != grace {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "a node never learnt the bucket's grace")
}

// heldBy names the running nodes whose store holds key (a tombstone
// counts).
func (tc *testCluster) heldBy(bucket string, key []byte) []string {
	tc.t.Helper()
	var out []string
	for _, name := range tc.names {
		n := tc.nodes[name]
		if n == nil {
			continue
		}
		_, found, err := n.store.Get(n.ring().KeyPartition(bucket, key), bucket, key)
		require.NoError(tc.t, err)
		if found {
			out = append(out, name)
		}
	}
	return out
}

// waitReaped waits until no running node holds any of the first keys
// reapKeys.
func (tc *testCluster) waitReaped(bucket string, keys int) {
	tc.t.Helper()
	require.Eventually(tc.t, func() bool {
		for i := range keys {
			if len(tc.heldBy(bucket, reapKey(i))) > 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "tombstones past the grace are reaped everywhere")
}

func reapKey(i int) []byte { return []byte(fmt.Sprintf("key-%03d", i)) }

// putKeys writes the first keys reapKeys on every primary (W=all).
func putKeys(t *testing.T, c *client.Client, bucket string, keys int) {
	t.Helper()
	for i := range keys {
		_, err := c.Put(t.Context(), bucket, reapKey(i), []byte("v"), client.W(client.All))
		require.NoError(t, err)
	}
}

// putAndDelete writes keys, then deletes them with the context read, on
// every primary (W=all).
func putAndDelete(t *testing.T, c *client.Client, bucket string, keys int) map[string]client.Context {
	t.Helper()
	ctxs := map[string]client.Context{}
	for i := range keys {
		_, err := c.Put(t.Context(), bucket, reapKey(i), []byte("v"), client.W(client.All))
		require.NoError(t, err)
		obj, err := c.Get(t.Context(), bucket, reapKey(i), client.R(client.All))
		require.NoError(t, err)
		dctx, err := c.Delete(t.Context(), bucket, reapKey(i), client.Causal(obj.Context), client.W(client.All))
		require.NoError(t, err)
		ctxs[string(reapKey(i))] = dctx
	}
	return ctxs
}

// Tombstones past the grace are removed from every replica; live keys and
// buckets that keep their tombstones are untouched. A key written again
// after its reap, with or without the tombstone's context, holds the new
// write on every replica: its dots are new.
func TestReapRemovesTombstonesFromEveryReplica(t *testing.T) {
	tc := startCluster(t, 3, reapQuickly)
	tc.createGraceBucket("n1", "b", "1s")
	c := tc.client("n1")
	const keys = 40
	ctxs := putAndDelete(t, c, "b", keys)
	tombs := map[string]dvv.Object{}
	for i := range keys {
		tombs[string(reapKey(i))] = tc.storedCopies("b", reapKey(i))["n1"]
	}
	_, err := c.Put(t.Context(), "b", []byte("live"), []byte("stays"), client.W(client.All))
	require.NoError(t, err)
	_, err = c.Put(t.Context(), "kept", []byte("k"), []byte("v"), client.W(client.All))
	require.NoError(t, err)
	_, err = c.Delete(t.Context(), "kept", []byte("k"), client.W(client.All))
	require.NoError(t, err)

	tc.waitReaped("b", keys)
	require.Len(t, tc.heldBy("b", []byte("live")), 3)
	require.Len(t, tc.heldBy("kept", []byte("k")), 3, "a bucket without a grace keeps its tombstones")
	var reaped float64
	for _, n := range tc.nodes {
		reaped += registryValue(t, n, "cairn_reap_keys_total")
		require.Empty(t, n.serveStatus().ReapPaused)
	}
	require.GreaterOrEqual(t, reaped, float64(3*keys), "every replica reaped its copy (a copy anti-entropy brought back is reaped again)")

	for i := range keys {
		key := reapKey(i)
		obj, err := c.Get(t.Context(), "b", key, client.R(client.All))
		require.NoError(t, err)
		require.False(t, obj.Found)
		opts := []client.Option{client.W(client.All)}
		if i%2 == 1 {
			// A replica that missed the reap (anti-entropy may copy a
			// tombstone back) still covers the key's old dots: a new
			// write must not reuse them, or it would be taken as seen.
			for _, name := range []string{"n2", "n3"} {
				n := tc.nodes[name]
				_, err := n.store.Modify(n.ring().KeyPartition("b", key), "b", key, true, func(dvv.Object, bool) (dvv.Object, bool, error) {
					return tombs[string(key)], true, nil
				})
				require.NoError(t, err)
			}
		} else {
			// A context read before the reap names dots no copy keeps.
			opts = append(opts, client.Causal(ctxs[string(key)]))
		}
		_, err = c.Put(t.Context(), "b", key, []byte("again"), opts...)
		require.NoError(t, err)
	}
	for i := range keys {
		obj, err := c.Get(t.Context(), "b", reapKey(i), client.R(client.All))
		require.NoError(t, err)
		require.Equal(t, []string{"again"}, values(obj))
		for name, copy := range tc.storedCopies("b", reapKey(i)) {
			require.Equal(t, []string{"again"}, liveValues(copy), "%s", name)
		}
	}
}

// While a member is down nothing is reaped: it may hold an older version
// of a deleted key. Back, it holds the value the others deleted; it takes
// the tombstone (anti-entropy), and only then is the key reaped. No
// deleted key reads as found at any point.
func TestReapWaitsForADownPrimaryAndItsRepair(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		reapQuickly(c)
		c.ReadRepair = false
		c.HintedHandoff = false
		c.AAE.Interval = 300 * time.Millisecond
		c.AAE.ExchangesPerSecond = 1000
		c.AAE.RetryAfter = 100 * time.Millisecond
	})
	tc.createGraceBucket("n1", "b", "1s")
	c := tc.client("n1")
	const keys = 30
	putKeys(t, c, "b", keys)
	tc.stop("n3")
	tc.waitDead("n3")
	for i := range keys {
		obj, err := c.Get(t.Context(), "b", reapKey(i), client.R(2))
		require.NoError(t, err)
		_, err = c.Delete(t.Context(), "b", reapKey(i), client.Causal(obj.Context), client.W(2))
		require.NoError(t, err)
	}
	time.Sleep(2 * time.Second) // past the grace, several passes
	require.Eventually(t, func() bool { return tc.nodes["n1"].serveStatus().ReapPaused == "member n3 is down" },
		10*time.Second, 50*time.Millisecond)
	for i := range keys {
		require.Len(t, tc.heldBy("b", reapKey(i)), 2, "nothing is reaped while n3 is down")
	}

	tc.restart("n3")
	tc.waitAlive(tc.names...)
	// n3 is back with the values the others deleted, until anti-entropy
	// brings it the tombstones.
	deadline := time.Now().Add(60 * time.Second)
	for {
		for i := range keys {
			obj, err := c.Get(t.Context(), "b", reapKey(i), client.R(1))
			require.NoError(t, err)
			require.False(t, obj.Found, "a deleted key reads as found")
		}
		held := 0
		for i := range keys {
			held += len(tc.heldBy("b", reapKey(i)))
		}
		if held == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d copies left", held)
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range tc.names {
		for i := range keys {
			obj, err := tc.client(name).Get(t.Context(), "b", reapKey(i), client.R(client.All))
			require.NoError(t, err)
			require.False(t, obj.Found)
		}
	}
}

// A hint of a deleted key held by a fallback is an older version the
// primaries' checks cannot see: while it is held, the key is kept.
func TestReapKeepsAKeyAFallbackHoldsAHintOf(t *testing.T) {
	tc := startCluster(t, 4, func(c *Config) {
		reapQuickly(c)
		c.N = 3
		c.HintedHandoff = false // the fallbacks keep their hints
	})
	tc.createGraceBucket("n1", "b", "1s")
	key := tc.keyOwnedBy(3, "n1", "n4")
	primaries, _ := tc.primariesOf(key)
	down := primaries[2]
	if down == "n1" {
		down = primaries[1]
	}
	c := tc.client("n1")
	tc.stop(down)
	tc.waitDead(down)
	_, err := c.Put(t.Context(), "b", key, []byte("v"), client.W(3))
	require.NoError(t, err)
	require.NotEmpty(t, tc.nodes["n4"].store.HintStats(), "n4 stood in for %s", down)
	tc.restart(down)
	tc.waitAlive(tc.names...)
	obj, err := c.Get(t.Context(), "b", key, client.R(client.All))
	require.NoError(t, err)
	_, err = c.Delete(t.Context(), "b", key, client.Causal(obj.Context), client.W(client.All), client.NoSloppy())
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		var kept float64
		for _, n := range tc.nodes {
			kept += roundsKept(t, n)
		}
		return kept >= 3
	}, 20*time.Second, 50*time.Millisecond, "rounds past the grace look at the key and keep it")
	require.ElementsMatch(t, primaries, tc.heldBy("b", key), "the key is kept while n4 holds a hint of it")
	p := tc.nodes["n4"].ring().KeyPartition("b", key)
	tomb, _, err := tc.nodes[primaries[0]].store.Get(p, "b", key)
	require.NoError(t, err)
	require.Equal(t, []uint8{wire.ReapHinted}, tc.nodes["n4"].reapVerdicts(p, []wire.AAEObject{{Bucket: "b", Key: key, Object: tomb}}))
}

// A node restarted on a copy of its data directory taken before a reap
// refuses to start: the copy holds values the cluster deleted and forgot.
// Started empty instead, it rejoins, and no deleted key comes back.
func TestRestoredDataDirectoryIsRefused(t *testing.T) {
	tc := startCluster(t, 3, reapQuickly)
	tc.createGraceBucket("n1", "b", "1s")
	c := tc.client("n1")
	const keys = 20
	putKeys(t, c, "b", keys)
	tc.stop("n3")
	backup := t.TempDir()
	require.NoError(t, exec.Command("cp", "-a", tc.cfgs["n3"].DataDir+"/.", backup).Run())
	tc.restart("n3")
	tc.waitAlive(tc.names...)
	for i := range keys {
		obj, err := c.Get(t.Context(), "b", reapKey(i), client.R(client.All))
		require.NoError(t, err)
		_, err = c.Delete(t.Context(), "b", reapKey(i), client.Causal(obj.Context), client.W(client.All))
		require.NoError(t, err)
	}
	tc.waitReaped("b", keys)

	tc.stop("n3")
	require.NoError(t, os.RemoveAll(tc.cfgs["n3"].DataDir))
	require.NoError(t, os.Rename(backup, tc.cfgs["n3"].DataDir))
	cfg := tc.cfgs["n3"]
	cfg.Join = []string{tc.cfgs["n1"].Gossip}
	var err error
	require.Eventually(t, func() bool {
		var n *Node
		n, err = Start(t.Context(), cfg)
		if err == nil {
			tc.nodes["n3"] = n // stopped by the cleanup
			return true
		}
		return !isPortBusy(err)
	}, 10*time.Second, 50*time.Millisecond)
	require.ErrorContains(t, err, "restored from an old copy")
	require.NotContains(t, tc.nodes, "n3", "the restored copy does not start")

	// Started empty, it takes a new directory identity and rejoins.
	require.NoError(t, os.RemoveAll(cfg.DataDir))
	tc.restart("n3")
	tc.waitAlive(tc.names...)
	for _, name := range tc.names {
		for i := range keys {
			obj, err := tc.client(name).Get(t.Context(), "b", reapKey(i), client.R(client.All))
			require.NoError(t, err)
			require.False(t, obj.Found)
		}
	}
}

// roundsKept is how many reap rounds n coordinated that kept every key.
func roundsKept(t *testing.T, n *Node) float64 {
	return labeledCounter(t, n, "cairn_reap_rounds_total", "result", "kept")
}

// isPortBusy says a start failed only because the stopped node's ports
// are not free yet.
func isPortBusy(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
