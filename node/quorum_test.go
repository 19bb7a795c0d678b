package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

func TestWriteThroughOneNodeReadThroughAnother(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := t.Context()
	_, err := tc.client("n1").Put(ctx, "b", []byte("k"), []byte("v"), client.W(client.All))
	require.NoError(t, err)
	obj, err := tc.client("n3").Get(ctx, "b", []byte("k"), client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"v"}, values(obj))
	require.Len(t, obj.Replicas, 3)

	// Every replica holds its own copy.
	_, copies, err := tc.client("n2").DebugReplicas(ctx, "b", []byte("k"))
	require.NoError(t, err)
	require.Len(t, copies, 3)
	for _, c := range copies {
		require.True(t, c.Found, c.Node)
		require.True(t, c.Primary, c.Node)
		require.Len(t, c.Siblings, 1, c.Node)
	}

	_, err = tc.client("n2").Get(ctx, "b", []byte("k"), client.R(4))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument, "R > N is refused, not a timeout")
	require.Contains(t, err.Error(), "r 4")
}

func TestQuorumWithAReplicaDown(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.stop("n3")
	tc.waitDead("n3")
	ctx := t.Context()
	c := tc.client("n1")
	k := tc.keyOwnedBy(3, "n3", "")

	_, err := c.Put(ctx, "b", k, []byte("v"), client.W(2))
	require.NoError(t, err)
	obj, err := c.Get(ctx, "b", k, client.R(2))
	require.NoError(t, err)
	require.Equal(t, []string{"v"}, values(obj))

	_, err = c.Put(ctx, "b", k, []byte("v3"), client.W(3), client.Timeout(time.Second))
	require.ErrorIs(t, err, cairn.ErrQuorum)
	var qe *cairn.QuorumError
	require.True(t, errors.As(err, &qe))
	require.Equal(t, 3, qe.Need)
	// The write fails as soon as n3's failure makes W=3 impossible, which
	// may be before n2 or even the coordinator's own fsync has acknowledged
	// (the local write overlaps the replica calls): the counts are those at
	// that moment.
	require.Contains(t, []int{0, 1, 2}, qe.Got)
	require.Equal(t, 3, qe.Of)
	require.Contains(t, err.Error(), "n3")

	_, err = c.Get(ctx, "b", k, client.R(3), client.Timeout(time.Second))
	require.ErrorIs(t, err, cairn.ErrQuorum)
}

func TestReadRepairHealsAReplicaThatMissedWrites(t *testing.T) {
	// Anti-entropy would repair n3 as soon as it is back: this is read
	// repair's test.
	tc := startCluster(t, 3, func(c *Config) { c.AAE.Enabled = false })
	ctx := t.Context()
	k := tc.keyOwnedBy(3, "n3", "")
	_, err := tc.client("n1").Put(ctx, "b", k, []byte("v1"), client.W(client.All))
	require.NoError(t, err)

	tc.stop("n3")
	tc.waitDead("n3")
	c := tc.client("n1")
	obj, err := c.Get(ctx, "b", k)
	require.NoError(t, err)
	_, err = c.Put(ctx, "b", k, []byte("v2"), client.Causal(obj.Context), client.W(2))
	require.NoError(t, err)

	tc.restart("n3")
	tc.waitAlive("n3")
	// n3 still holds v1 only.
	_, copies, err := c.DebugReplicas(ctx, "b", k)
	require.NoError(t, err)
	require.False(t, allEqual(copies))

	obj, err = c.Get(ctx, "b", k, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"v2"}, values(obj), "the merge at R=all already hides the stale copy")
	require.Eventually(t, func() bool {
		_, copies, err := c.DebugReplicas(ctx, "b", k)
		return err == nil && len(copies) == 3 && allEqual(copies)
	}, 10*time.Second, 20*time.Millisecond, "read repair brings n3 up to date")
	require.Eventually(t, func() bool {
		return counterValue(t, tc.nodes["n1"].metrics.readRepairs.WithLabelValues("ok")) > 0
	}, 10*time.Second, 10*time.Millisecond, "the repair is counted")
}

// allEqual reports whether every copy is found with the same siblings and
// context.
func allEqual(copies []client.ReplicaCopy) bool {
	for _, c := range copies {
		if !c.Found || c.Error != "" || len(c.Siblings) != len(copies[0].Siblings) || len(c.Context) != len(copies[0].Context) {
			return false
		}
		for a, n := range copies[0].Context {
			if c.Context[a] != n {
				return false
			}
		}
		for i, s := range c.Siblings {
			o := copies[0].Siblings[i]
			if s.Actor != o.Actor || s.Counter != o.Counter || string(s.Value) != string(o.Value) || s.Tombstone != o.Tombstone {
				return false
			}
		}
	}
	return true
}

func TestWritesAreForwardedToAReplica(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.N = 1; c.R = 1; c.W = 1 })
	ctx := t.Context()
	// With N=1 each key lives on one node: find one that n1 does not hold.
	k := tc.keyOwnedBy(1, "n2", "n1")
	primaries := []string{"n2"}

	_, err := tc.client("n1").Put(ctx, "b", k, []byte("v"))
	require.NoError(t, err)
	require.Equal(t, 1.0, counterValue(t, tc.nodes["n1"].metrics.forwarded))
	obj, err := tc.client(primaries[0]).Get(ctx, "b", k)
	require.NoError(t, err)
	require.Equal(t, []string{"v"}, values(obj))
	// The dot was minted by the node that stores the object.
	_, copies, err := tc.client("n1").DebugReplicas(ctx, "b", k)
	require.NoError(t, err)
	require.Equal(t, primaries[0], copies[0].Node)
	require.Contains(t, copies[0].Siblings[0].Actor, primaries[0]+".")
}

func TestNodesListeningOnAllInterfacesGossipADialableAddress(t *testing.T) {
	tc := startCluster(t, 2, func(c *Config) { c.Listen, c.Insecure = "0.0.0.0:0", true })
	for _, m := range tc.nodes["n1"].members.Members() {
		require.True(t, strings.HasPrefix(m.Addr, "127.0.0.1:"), "%s gossips %s", m.Name, m.Addr)
	}
	_, err := tc.client("n1").Put(t.Context(), "b", []byte("k"), []byte("v"), client.W(2))
	require.NoError(t, err)
}
