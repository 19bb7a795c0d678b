package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/stretchr/testify/require"
)

// hintRefusals is what a node counted of hinted writes it refused at the
// per-owner cap.
func hintRefusals(t *testing.T, n *Node) float64 {
	return labeledCounter(t, n, "cairn_refusals_total", "reason", "hint_owner_bytes")
}

// labeledCounter is the value of the counter name whose label has value.
func labeledCounter(t *testing.T, n *Node, name, label, value string) float64 {
	t.Helper()
	families, err := n.metrics.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (tc *testCluster) hintRefusalsTotal() float64 {
	sum := 0.0
	for _, n := range tc.nodes {
		sum += hintRefusals(tc.t, n)
	}
	return sum
}

// storedHintBytes scans what a node keeps for owner, keys and values.
func storedHintBytes(t *testing.T, n *Node, owner string) int64 {
	t.Helper()
	var sum int64
	require.NoError(t, n.store.ScanHints(owner, nil, func(h store.Hint) (bool, error) {
		sum += int64(len(h.Pos) + h.Size)
		return true, nil
	}))
	return sum
}

// TestHintCapRefusesAndHandoffFreesIt: with one node of five down, its
// keys' writes go to its two other primaries and to a fallback that keeps
// a hint, under a per-owner cap of a few KiB. A fallback at its cap
// refuses; the coordinator asks the key's other fallback once (a write
// still succeeds with W=3 through it), and when that one is full too the
// write fails W=3 with a quorum error naming the refusal, without asking
// anyone twice. No node keeps more than the cap. W=2 writes still
// succeed on the primaries. When the owner is back, handoff brings it
// every write acknowledged at W=3 and the caps are free again.
//
// Five nodes, not four: with four and one down each key has a single
// fallback, so a refusal could never be taken by another one.
func TestHintCapRefusesAndHandoffFreesIt(t *testing.T) {
	const capBytes = 4 << 10
	tc := startCluster(t, 5, func(c *Config) {
		c.MaxHintBytesPerOwner = capBytes
		c.Handoff.Interval = 100 * time.Millisecond
		c.Handoff.RetryBase = 50 * time.Millisecond
		// Only handoff brings the owner its writes here.
		c.AAE.Enabled = false
		c.ReadRepair = false
	})
	ctx := t.Context()
	down := "n5"
	tc.stop(down)
	tc.waitDead(down)
	c := tc.client("n1")
	value := make([]byte, 256)

	var acked [][]byte // keys written with W=3
	var attempts, refusedW3, failuresInARow int
	for i := 0; failuresInARow < 10; i++ {
		require.Less(t, i, 2000, "the fallbacks never filled up")
		key := []byte(fmt.Sprintf("k%d", i))
		primaries, _ := tc.primariesOf(key)
		if !containsName(primaries, down) {
			continue
		}
		attempts++
		_, err := c.Put(ctx, "b", key, value, client.W(3))
		if err == nil {
			acked = append(acked, key)
			failuresInARow = 0
			continue
		}
		failuresInARow++
		refusedW3++
		var qe *cairn.QuorumError
		require.True(t, errors.As(err, &qe), "%v", err)
		require.Equal(t, "w", qe.Kind)
		require.Equal(t, 4, qe.Of, "the three targets and the fallback that replaced one: %v", err)
		refusals := 0
		for _, r := range qe.Replicas {
			if !r.OK && r.Err != "pending" {
				require.Contains(t, r.Err, "max_hint_bytes_per_owner", "the error names the refusal: %v", err)
				refusals++
			}
		}
		require.Equal(t, 2, refusals, "both fallbacks refused: %v", err)

		// The same key with W=2 is acknowledged by the primaries.
		attempts++
		_, err = c.Put(ctx, "b", key, value, client.W(2))
		require.NoError(t, err)
	}
	require.Positive(t, len(acked))
	require.Positive(t, refusedW3)
	// A request asks each fallback once at most: a refusal is never
	// retried in a loop.
	require.LessOrEqual(t, tc.hintRefusalsTotal(), float64(2*attempts))

	// Some write acknowledged at W=3 was kept by its key's second
	// fallback, the first one having refused at its cap.
	viaOtherFallback := 0
	r := tc.nodes["n1"].ring()
	for _, key := range acked {
		p := r.KeyPartition("b", key)
		_, fallbacks := r.Preference(p, 3)
		first := fallbacks[0]
		if hintRefusals(t, tc.nodes[first]) == 0 {
			continue
		}
		for _, fb := range fallbacks[1:] {
			_, held, err := tc.nodes[fb].store.GetHint(store.HintRef{Owner: down, Partition: p, Bucket: "b", Key: key})
			require.NoError(t, err)
			_, heldFirst, err := tc.nodes[first].store.GetHint(store.HintRef{Owner: down, Partition: p, Bucket: "b", Key: key})
			require.NoError(t, err)
			if held && !heldFirst {
				viaOtherFallback++
			}
		}
	}
	require.Positive(t, viaOtherFallback, "a write refused by a full fallback went to the key's other one")
	for name, n := range tc.nodes {
		st := n.store.HintStats()[down]
		require.LessOrEqual(t, st.Bytes, int64(capBytes), "%s's account of its hints for %s", name, down)
		require.Equal(t, storedHintBytes(t, n, down), st.Bytes, "%s's account matches what it stores", name)
	}

	tc.restart(down)
	tc.waitAlive(tc.names...)
	require.Eventually(t, func() bool { return len(tc.pendingHints()) == 0 }, 60*time.Second, 50*time.Millisecond,
		"every hint is delivered and its episode closed: %v", tc.pendingHints())
	owner := tc.nodes[down]
	for _, key := range acked {
		p := owner.ring().KeyPartition("b", key)
		_, found, err := owner.store.Get(p, "b", key)
		require.NoError(t, err)
		require.True(t, found, "%s holds %s, acknowledged at W=3", down, key)
	}
	for name, n := range tc.nodes {
		_, kept := n.store.HintStats()[down]
		require.False(t, kept, "%s's cap for %s is free again", name, down)
	}
}

func TestConfigRefusesHintCapsThatCannotWork(t *testing.T) {
	cfg := DefaultConfig()
	require.Equal(t, int64(1<<30), cfg.MaxHintBytesPerOwner)
	cfg.MaxHintBytesPerOwner = 0
	require.ErrorContains(t, cfg.Validate(), "max_hint_bytes_per_owner")
	cfg = DefaultConfig()
	cfg.MaxHintBytes = cfg.MaxHintBytesPerOwner - 1
	require.ErrorContains(t, cfg.Validate(), "max_hint_bytes")
	cfg.MaxHintBytes = -1
	require.ErrorContains(t, cfg.Validate(), "max_hint_bytes")
}
