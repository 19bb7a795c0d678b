package integration

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

// seedsOnly connects to exactly one node.
func (c *cluster) seedsOnly(addr string) *client.Client {
	t := c.t
	t.Helper()
	cl, err := client.New(t.Context(), c.seedsOnlyConfig(addr))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// hintsHeld sums, over every running node, the hints kept for each owner
// (pending and delivered-but-not-yet-deleted).
func (c *cluster) hintsHeld() (pending, held map[string]int) {
	c.t.Helper()
	pending, held = map[string]int{}, map[string]int{}
	for _, p := range c.nodes {
		if !c.running(p) {
			continue
		}
		cl := c.seedsOnly(p.addr)
		ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
		_, queues, err := cl.Hints(ctx)
		cancel()
		_ = cl.Close()
		if err != nil {
			continue
		}
		for _, q := range queues {
			pending[p.name+"->"+q.Owner] += q.Pending
			held[p.name+"->"+q.Owner] += q.Pending + q.Delivered
		}
	}
	return pending, held
}

func members(k int) []string {
	var out []string
	for i := 1; i <= k; i++ {
		out = append(out, fmt.Sprintf("n%d", i))
	}
	return out
}

// keysOn returns count keys whose three primaries include every node in on.
func keysOn(t *testing.T, k int, count int, on ...string) []string {
	r, err := ring.New(ring.DefaultPartitions, members(k))
	require.NoError(t, err)
	var keys []string
	for i := 0; len(keys) < count; i++ {
		key := fmt.Sprintf("key-%d", i)
		primaries, _ := r.Preference(r.KeyPartition("b", []byte(key)), 3)
		all := true
		for _, n := range on {
			all = all && contains(primaries, n)
		}
		if all {
			keys = append(keys, key)
		}
	}
	return keys
}

func TestHintedHandoffAfterTwoPrimariesWereKilled(t *testing.T) {
	c := startCluster(t, 5, "--handoff-interval", "500ms")
	key := keysOn(t, 5, 1, "n2", "n3")[0]
	r, err := ring.New(ring.DefaultPartitions, members(5))
	require.NoError(t, err)
	primaries, _ := r.Preference(r.KeyPartition("b", []byte(key)), 3)
	var survivor string
	for _, p := range primaries {
		if p != "n2" && p != "n3" {
			survivor = p
		}
	}
	addr := c.node(survivor).addr
	c.mustCLI("put", "--addr", addr, "--w", "all", "b", key, "v0")

	c.kill(c.node("n2"))
	c.kill(c.node("n3"))
	c.waitMembers(5, "n2", "n3")

	for i := 1; i <= 10; i++ {
		g := c.get(addr, "b", key, "--r", "2")
		require.Equal(t, []string{fmt.Sprintf("v%d", i-1)}, g.values(), "R=2 returns the newest write")
		c.mustCLI("put", "--addr", addr, "--w", "2", "--context", g.Context, "b", key, fmt.Sprintf("v%d", i))
	}
	_, errOut, err := c.cli("put", "--addr", addr, "--pw", "2", "--timeout", "2s", "b", key, "strict")
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit))
	require.Contains(t, string(errOut), "need pw=2")
	require.Contains(t, string(errOut), "of 3")
	pending, _ := c.hintsHeld()
	require.NotEmpty(t, pending, "fallbacks keep hints for n2 and n3")

	c.start(c.node("n2"))
	c.start(c.node("n3"))
	c.waitReady(c.node("n2"))
	c.waitReady(c.node("n3"))
	start := time.Now()
	require.Eventually(t, func() bool {
		_, held := c.hintsHeld()
		return len(held) == 0
	}, 60*time.Second, 200*time.Millisecond, "every hint delivered and every fallback's hint store empty")
	t.Logf("hints delivered and cleared %v after the primaries restarted", time.Since(start))
	copies := c.replicas(addr, "b", key)
	var primaryCopies []replicaCopy
	for _, cp := range copies {
		if cp.Primary {
			primaryCopies = append(primaryCopies, cp)
		}
	}
	require.Len(t, primaryCopies, 3)
	require.True(t, identical(primaryCopies), "all three primaries hold the same object: %+v", primaryCopies)
	require.Len(t, primaryCopies[0].Siblings, 1)
	require.Equal(t, "v10", string(primaryCopies[0].Siblings[0].Value))
}

func TestHandoffResumesAfterTheFallbackIsKilledMidDelivery(t *testing.T) {
	// The owner accepts 32 KiB/s of handoff, so delivering ~600 KiB takes
	// long enough to kill a fallback in the middle of it.
	c := startCluster(t, 5, "--handoff-interval", "300ms", "--handoff-receive-rate", "32768")
	owner := c.node("n4")
	keys := keysOn(t, 5, 300, "n4")
	c.kill(owner)
	c.waitMembers(5, "n4")

	cl := c.seedsOnly(c.node("n1").addr)
	value := strings.Repeat("x", 2000)
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := cl.Put(ctx, "b", []byte(k), []byte(value+k), client.W(3))
		cancel()
		require.NoError(t, err)
	}
	before, _ := c.hintsHeld()
	total := 0
	for _, n := range before {
		total += n
	}
	require.Equal(t, len(keys), total, "one hint per key: %v", before)

	c.start(owner)
	c.waitReady(owner)
	// Wait until delivery is under way, then kill the fallback holding the
	// most pending hints.
	var victim string
	require.Eventually(t, func() bool {
		pending, _ := c.hintsHeld()
		left, most := 0, 0
		for k, n := range pending {
			left += n
			if n > most {
				most, victim = n, strings.Split(k, "->")[0]
			}
		}
		return left < total && most > 0
	}, 60*time.Second, 100*time.Millisecond)
	c.kill(c.node(victim))
	c.start(c.node(victim))
	c.waitReady(c.node(victim))

	require.Eventually(t, func() bool {
		_, held := c.hintsHeld()
		return len(held) == 0
	}, 120*time.Second, 250*time.Millisecond, "delivery resumes after the restart and finishes")

	// Nothing lost, nothing duplicated: the owner holds every key once.
	oc := c.seedsOnly(owner.addr)
	for _, k := range keys {
		part, copies, err := oc.DebugReplicas(t.Context(), "b", []byte(k))
		require.NoError(t, err)
		_ = part
		for _, cp := range copies {
			if cp.Node != "n4" {
				continue
			}
			require.True(t, cp.Found, "n4 lacks %s", k)
			require.Len(t, cp.Siblings, 1, "%s has extra siblings on n4", k)
			require.Equal(t, value+k, string(cp.Siblings[0].Value))
		}
	}

	// The owner paced its own catch-up, and says so in its metrics.
	require.Positive(t, c.metric(owner.admin, "cairn_handoff_throttled_total"))
	require.GreaterOrEqual(t, c.metric(owner.admin, "cairn_handoff_received_total"), float64(len(keys)))
}
