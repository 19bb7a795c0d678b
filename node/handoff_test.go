package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
	"github.com/stretchr/testify/require"
)

// primariesOf returns the key's three primaries and the other nodes.
func (tc *testCluster) primariesOf(key []byte) (primaries, others []string) {
	r := tc.nodes[tc.names[0]].ring()
	return r.Preference(r.KeyPartition("b", key), 3)
}

func (tc *testCluster) pendingHints() map[string]int {
	out := map[string]int{}
	for name, n := range tc.nodes {
		for owner, st := range n.store.HintStats() {
			out[name+"->"+owner] = st.Pending + st.Delivered
		}
	}
	return out
}

func TestSloppyQuorumAndHintedHandoff(t *testing.T) {
	tc := startCluster(t, 5, func(c *Config) {
		c.Handoff.Interval = 100 * time.Millisecond
		c.Handoff.RetryBase = 50 * time.Millisecond
	})
	ctx := t.Context()
	key := []byte("k")
	primaries, _ := tc.primariesOf(key)
	survivor := primaries[0]
	c := tc.client(survivor)
	_, err := c.Put(ctx, "b", key, []byte("v0"), client.W(client.All))
	require.NoError(t, err)

	tc.stop(primaries[1])
	tc.stop(primaries[2])
	tc.waitDead(primaries[1])
	tc.waitDead(primaries[2])

	// Always writeable: fallbacks stand in for the two primaries.
	for i := 1; i <= 20; i++ {
		obj, err := c.Get(ctx, "b", key, client.R(2))
		require.NoError(t, err)
		require.Equal(t, []string{fmt.Sprintf("v%d", i-1)}, values(obj), "R=2 reads the newest write")
		_, err = c.Put(ctx, "b", key, []byte(fmt.Sprintf("v%d", i)), client.W(2), client.Causal(obj.Context))
		require.NoError(t, err)
	}
	// ...but a strict quorum of primaries cannot be met.
	_, err = c.Put(ctx, "b", key, []byte("strict"), client.PW(2), client.Timeout(time.Second))
	var qe *cairn.QuorumError
	require.True(t, errors.As(err, &qe), "%v", err)
	require.Equal(t, "pw", qe.Kind)
	require.Equal(t, 2, qe.Need)
	require.Equal(t, 3, qe.Of)
	// With one primary up, PW=2 is impossible before anything is sent, so
	// nothing was written.
	require.Equal(t, 0, qe.Got)
	obj, err := c.Get(ctx, "b", key, client.R(2))
	require.NoError(t, err)
	require.Equal(t, []string{"v20"}, values(obj))
	hinted := tc.pendingHints()
	require.NotEmpty(t, hinted, "the fallbacks keep hints")
	for k := range hinted {
		require.Contains(t, []string{primaries[1], primaries[2]}, k[len(k)-2:], "hints are kept for the stopped primaries: %v", hinted)
	}

	tc.restart(primaries[1])
	tc.restart(primaries[2])
	tc.waitAlive(tc.names...)
	require.Eventually(t, func() bool { return len(tc.pendingHints()) == 0 }, 30*time.Second, 50*time.Millisecond,
		"every hint is delivered and its episode closed: %v", tc.pendingHints())
	for _, p := range primaries {
		obj, found, err := tc.nodes[p].store.Get(tc.nodes[p].ring().KeyPartition("b", key), "b", key)
		require.NoError(t, err)
		require.True(t, found, "%s holds the key", p)
		require.Equal(t, []string{"v20"}, liveValues(obj), "%s holds the last acknowledged write only", p)
	}
	var delivered float64
	for _, n := range tc.nodes {
		delivered += registryValue(t, n, "cairn_hints_delivered_total")
	}
	require.Positive(t, delivered)
}

func liveValues(o dvv.Object) []string {
	var out []string
	for _, s := range o.Live() {
		out = append(out, string(s.Value))
	}
	return out
}

func TestWritesWithEveryPrimaryDownAreMintedByAFallback(t *testing.T) {
	tc := startCluster(t, 5, func(c *Config) {
		c.Handoff.Interval = 100 * time.Millisecond
		c.Handoff.RetryBase = 50 * time.Millisecond
	})
	ctx := t.Context()
	key := []byte("all-down")
	primaries, others := tc.primariesOf(key)
	for _, p := range primaries {
		tc.stop(p)
	}
	for _, p := range primaries {
		tc.waitDead(p)
	}
	c := tc.client(others[0])
	_, err := c.Put(ctx, "b", key, []byte("a"), client.W(2))
	require.NoError(t, err)
	// A second blind write is concurrent with the first: both must survive
	// handoff as siblings.
	_, err = c.Put(ctx, "b", key, []byte("b"), client.W(2))
	require.NoError(t, err)
	obj, err := c.Get(ctx, "b", key, client.R(2))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "b"}, values(obj))

	for _, p := range primaries {
		tc.restart(p)
	}
	tc.waitAlive(tc.names...)
	require.Eventually(t, func() bool { return len(tc.pendingHints()) == 0 }, 30*time.Second, 50*time.Millisecond)
	for _, p := range primaries {
		got, err := tc.client(p).Get(ctx, "b", key, client.R(client.All), client.PR(3))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"a", "b"}, values(got), "on %s", p)
	}
}

func TestHandoffIsPacedByTheReceiver(t *testing.T) {
	tc := startCluster(t, 4, func(c *Config) {
		c.Handoff.Interval = 50 * time.Millisecond
		c.Handoff.BatchBytes = 4 << 10
		c.Handoff.MaxBatchBytes = 8 << 10
		c.Handoff.ReceiveBytesPerSecond = 64 << 10
		c.Handoff.ReceiveBurstBytes = 8 << 10
		// Only handoff repairs here: anti-entropy's catch-up of the
		// returning node would compete for the CPU and blur the pace.
		c.AAE.Enabled = false
	})
	ctx := t.Context()
	down := "n4"
	tc.stop(down)
	tc.waitDead(down)
	c := tc.client("n1")
	value := make([]byte, 1<<10)
	written := 0
	for i := 0; written < 60; i++ {
		key := []byte(fmt.Sprintf("k%d", i))
		primaries, _ := tc.primariesOf(key)
		if !containsName(primaries, down) {
			continue
		}
		_, err := c.Put(ctx, "b", key, value, client.W(3))
		require.NoError(t, err)
		written++
	}
	tc.restart(down)
	tc.waitAlive(tc.names...)
	require.Eventually(t, func() bool { return len(tc.pendingHints()) == 0 }, 60*time.Second, 50*time.Millisecond)
	// 60 KiB at 64 KiB/s with 8 KiB bursts: the receiver must have asked
	// the fallbacks to wait at least once, and said so in its metrics.
	require.Positive(t, registryValue(t, tc.nodes[down], "cairn_handoff_throttled_total"))
	require.Equal(t, float64(written), registryValue(t, tc.nodes[down], "cairn_handoff_received_total"))
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestHandoffOfManySiblingObjects: objects with many siblings reach the
// receiver's element limit long before a batch's bytes (60 objects of 100
// siblings are 5.5 KiB each, 330 KiB together, and 80,000 elements: past
// the 65,533 one message may hold). Handoff sizes its batches by elements
// too, so every hint is delivered whole instead of the batch being refused
// as a protocol error again and again.
func TestHandoffOfManySiblingObjects(t *testing.T) {
	tc := startCluster(t, 4, func(c *Config) {
		c.Handoff.Interval = 50 * time.Millisecond
		c.Handoff.RetryBase = 50 * time.Millisecond
		c.Handoff.BatchBytes = 1 << 20
		c.AAE.Enabled = false
	})
	ctx := t.Context()
	owner := "n4"
	tc.stop(owner)
	tc.waitDead(owner)

	// What a fallback holds after replicating, for the stopped owner, the
	// writes of a client that never sent a context.
	var obj dvv.Object
	for i := range 100 {
		obj = mustUpdate(obj.Update(nil, "n1.0123456789abcdef", []byte(fmt.Sprintf("value%03d", i)), false, int64(i+1)))
	}
	r := tc.nodes["n1"].ring()
	var keys [][]byte
	for i := 0; len(keys) < 60; i++ {
		key := []byte(fmt.Sprintf("many-%d", i))
		// All on one fallback, for one batch.
		primaries, fallbacks := tc.primariesOf(key)
		if !containsName(primaries, owner) || fallbacks[0] != "n1" {
			continue
		}
		k := coord.Key{Partition: r.KeyPartition("b", key), Bucket: "b", Key: key}
		_, err := tc.nodes["n1"].replicas.localSync(ctx, k, obj, true, owner)
		require.NoError(t, err)
		keys = append(keys, key)
	}
	require.Equal(t, map[string]int{"n1->" + owner: 60}, tc.pendingHints())

	tc.restart(owner)
	tc.waitAlive(tc.names...)
	require.Eventually(t, func() bool { return len(tc.pendingHints()) == 0 }, 60*time.Second, 50*time.Millisecond,
		"every hint is delivered: %v", tc.pendingHints())
	n4 := tc.nodes[owner]
	for _, key := range keys {
		got, found, err := n4.store.Get(r.KeyPartition("b", key), "b", key)
		require.NoError(t, err)
		require.True(t, found)
		require.True(t, got.Equal(obj), "%s holds every sibling of %s", owner, key)
	}
	require.Equal(t, 60.0, registryValue(t, n4, "cairn_handoff_received_total"))
}

// TestHintsOfARemovedMemberGoToTheNewOwners: a member is stopped while
// writes go on (its fallbacks keep hints), then an operator removes it.
// The hints kept for it are handed to the new primaries of their
// partitions instead of waiting forever for a member that will never own
// anything again, and every key ends up on all of them. Anti-entropy is
// off, so handoff is the only thing that can bring a key to a new owner:
// hints planted for keys no other node holds prove it.
func TestHintsOfARemovedMemberGoToTheNewOwners(t *testing.T) {
	tc := startCluster(t, 4, func(c *Config) {
		c.Handoff.Interval = 50 * time.Millisecond
		c.Handoff.RetryBase = 50 * time.Millisecond
		c.AAE.Enabled = false
	})
	ctx := t.Context()
	gone := "n4"
	tc.stop(gone)
	tc.waitDead(gone)

	c := tc.client("n1")
	want := map[string]string{}
	for i := 0; len(want) < 30; i++ {
		key := []byte(fmt.Sprintf("w%d", i))
		primaries, _ := tc.primariesOf(key)
		if !containsName(primaries, gone) {
			continue
		}
		_, err := c.Put(ctx, "b", key, []byte("v"+string(key)), client.W(3))
		require.NoError(t, err)
		want[string(key)] = "v" + string(key)
	}
	// Hints for keys that only n1 holds, as a hint.
	r := tc.nodes["n1"].ring()
	for i := range 20 {
		key := []byte(fmt.Sprintf("planted%d", i))
		obj := mustUpdate(dvv.Object{}.Update(nil, "n1.0123456789abcdef", []byte("p"+string(key)), false, 1))
		k := coord.Key{Partition: r.KeyPartition("b", key), Bucket: "b", Key: key}
		_, err := tc.nodes["n1"].replicas.localSync(ctx, k, obj, true, gone)
		require.NoError(t, err)
		want[string(key)] = "p" + string(key)
	}
	kept := 0
	for k, n := range tc.pendingHints() {
		require.Equal(t, gone, k[len(k)-len(gone):], "hints are kept for the stopped member only: %v", tc.pendingHints())
		kept += n
	}
	require.GreaterOrEqual(t, kept, 50, "each key is hinted for the stopped member")

	_, err := tc.nodes["n2"].serveRemoveMember(ctx, transport.Peer{}, wire.RemoveMemberReq{Name: gone, Force: true})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, n := range tc.nodes {
			if len(n.ring().Members()) != 3 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "every node learns of the removal")
	require.Eventually(t, func() bool { return len(tc.pendingHints()) == 0 }, 60*time.Second, 50*time.Millisecond,
		"the hints of the removed member are delivered to the new owners: %v", tc.pendingHints())

	var retargeted float64
	for _, n := range tc.nodes {
		retargeted += registryValue(t, n, "cairn_hints_retargeted_total")
	}
	require.GreaterOrEqual(t, retargeted, float64(kept))
	r = tc.nodes["n1"].ring()
	for key, value := range want {
		p := r.KeyPartition("b", []byte(key))
		primaries, _ := r.Preference(p, 3)
		require.Len(t, primaries, 3)
		for _, name := range primaries {
			obj, found, err := tc.nodes[name].store.Get(p, "b", []byte(key))
			require.NoError(t, err)
			require.True(t, found, "%s holds %s", name, key)
			require.Equal(t, []string{value}, liveValues(obj), "%s holds %s", name, key)
		}
		got, err := c.Get(ctx, "b", []byte(key), client.R(client.All), client.PR(3))
		require.NoError(t, err)
		require.Equal(t, []string{value}, values(got))
	}
}
