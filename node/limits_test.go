package node

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/node/coord"
	"github.com/stretchr/testify/require"
)

// The sibling limit and the object size limit refuse a client write that
// would grow an object past them, and let through every write that does
// not grow it.
func TestWriteLimitsRefuseGrowthOnly(t *testing.T) {
	l := writeLimits{siblings: 2, bytes: 300}
	var o dvv.Object
	o1 := mustUpdate(o.Update(nil, "a", []byte("x"), false, 1))
	o2 := mustUpdate(o1.Update(nil, "a", []byte("y"), false, 2))
	require.NoError(t, l.check(o, o1))
	require.NoError(t, l.check(o1, o2))
	o3 := mustUpdate(o2.Update(nil, "a", []byte("z"), false, 3))
	err := l.check(o2, o3)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.EqualError(t, err, "invalid argument: too many siblings: 3; read and write back with the context to merge")
	del := mustUpdate(o2.Update(nil, "a", nil, true, 3))
	require.ErrorIs(t, l.check(o2, del), cairn.ErrInvalidArgument, "a delete without a context adds a tombstone sibling")

	// An object merges grew past the limit: a write that shrinks it passes,
	// even when it leaves more siblings than the limit.
	require.NoError(t, l.check(o3, mustUpdate(o3.Update(dvv.VV{"a": 1}, "a", []byte("w"), false, 4))))
	require.NoError(t, l.check(o3, mustUpdate(o3.Update(o3.VV, "a", []byte("w"), false, 4))))

	big := mustUpdate(o1.Update(o1.VV, "a", make([]byte, 400), false, 2))
	err = l.check(o1, big)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "object too large")
	require.NoError(t, l.check(big, mustUpdate(big.Update(big.VV, "a", make([]byte, 350), false, 3))), "smaller, though still over")
}

// sameCopies reports whether two sets of replica copies hold the same
// siblings and contexts, node by node.
func sameCopies(a, b []client.ReplicaCopy) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Node != b[i].Node || a[i].Found != b[i].Found || fmt.Sprint(a[i].Context) != fmt.Sprint(b[i].Context) ||
			len(a[i].Siblings) != len(b[i].Siblings) {
			return false
		}
		for j := range a[i].Siblings {
			x, y := a[i].Siblings[j], b[i].Siblings[j]
			if x.Actor != y.Actor || x.Counter != y.Counter || !bytes.Equal(x.Value, y.Value) || x.Tombstone != y.Tombstone {
				return false
			}
		}
	}
	return true
}

// TestSiblingLimit is issue 12's acceptance check on a real cluster: 100
// puts without a context make 100 siblings; the 101st, and a delete
// without a context, are refused with the message and change no replica,
// whichever node they go through; a get returns the context, and a put
// with it leaves one sibling.
func TestSiblingLimit(t *testing.T) {
	tc := startCluster(t, 4, func(c *Config) { c.AAE.Enabled = false })
	ctx := t.Context()
	primaries, others := tc.primariesOf([]byte("storm"))
	key := []byte("storm")
	c := tc.client(primaries[0])
	for i := range 100 {
		_, err := c.Put(ctx, "b", key, []byte(fmt.Sprintf("v%d", i)), client.W(client.All))
		require.NoError(t, err, "put %d", i)
	}
	_, before, err := c.DebugReplicas(ctx, "b", key)
	require.NoError(t, err)
	require.Len(t, before, 3)
	for _, cp := range before {
		require.Len(t, cp.Siblings, 100, cp.Node)
	}

	// Through the coordinator, and through a node that forwards.
	for _, via := range []string{primaries[0], others[0]} {
		_, err = tc.client(via).Put(ctx, "b", key, []byte("one too many"))
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, "via %s", via)
		require.ErrorContains(t, err, "too many siblings: 101; read and write back with the context to merge")
		_, err = tc.client(via).Delete(ctx, "b", key)
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, "a delete without a context adds a tombstone: via %s", via)
		require.ErrorContains(t, err, "too many siblings: 101")
	}
	_, after, err := c.DebugReplicas(ctx, "b", key)
	require.NoError(t, err)
	require.True(t, sameCopies(before, after), "a refused write changes no replica")
	require.Equal(t, 4.0, registryValue(t, tc.nodes[primaries[0]], "cairn_writes_refused_total"),
		"every refusal is the minting node's: forwarded writes too")

	obj, err := c.Get(ctx, "b", key)
	require.NoError(t, err)
	require.Len(t, obj.Siblings, 100)
	require.Equal(t, 100, obj.SiblingCount)
	require.False(t, obj.ValuesOmitted)
	require.NotEmpty(t, obj.Context)

	_, err = tc.client(primaries[2]).Put(ctx, "b", key, []byte("merged"), client.Causal(obj.Context), client.W(client.All))
	require.NoError(t, err, "a put with the context collapses the siblings, however many")
	obj, err = c.Get(ctx, "b", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"merged"}, values(obj))
	_, after, err = c.DebugReplicas(ctx, "b", key)
	require.NoError(t, err)
	for _, cp := range after {
		require.Len(t, cp.Siblings, 1, cp.Node)
	}
	_, err = c.Put(ctx, "b", key, []byte("a sibling again"))
	require.NoError(t, err, "back within the limit, blind puts pass again")
}

// TestObjectSizeLimit: a client write that would leave an object larger
// than max_object_size is refused and changes nothing; a put with the
// context, which shrinks it, passes.
func TestObjectSizeLimit(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		c.AAE.Enabled = false
		c.MaxValueSize, c.MaxObjectSize = 1000, 4096
	})
	ctx := t.Context()
	c := tc.client("n1")
	key := []byte("big")
	for i := range 3 {
		_, err := c.Put(ctx, "b", key, bytes.Repeat([]byte{byte('a' + i)}, 1000), client.W(client.All))
		require.NoError(t, err)
	}
	_, before, err := c.DebugReplicas(ctx, "b", key)
	require.NoError(t, err)
	_, err = c.Put(ctx, "b", key, bytes.Repeat([]byte{'d'}, 1000))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "object too large")
	require.ErrorContains(t, err, "more than the limit of 4096; read and write back with the context to merge")
	_, after, err := c.DebugReplicas(ctx, "b", key)
	require.NoError(t, err)
	require.True(t, sameCopies(before, after), "a refused write changes no replica")

	obj, err := c.Get(ctx, "b", key)
	require.NoError(t, err)
	require.Len(t, obj.Siblings, 3)
	_, err = c.Put(ctx, "b", key, bytes.Repeat([]byte{'m'}, 1000), client.Causal(obj.Context), client.W(client.All))
	require.NoError(t, err)
	obj, err = c.Get(ctx, "b", key)
	require.NoError(t, err)
	require.Len(t, obj.Siblings, 1)
}

// TestTwoMaxSizeSiblingsCanBeRead: with the default limits, two 8 MiB
// siblings make a get answer above the 16 MiB every connection starts
// with; the client learns the node's frame limit and reads it.
func TestTwoMaxSizeSiblingsCanBeRead(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.AAE.Enabled = false })
	ctx := t.Context()
	c := tc.client("n1")
	big := func(b byte) []byte { return bytes.Repeat([]byte{b}, 8<<20) }
	for _, b := range []byte{'x', 'y'} {
		_, err := c.Put(ctx, "b", []byte("k"), big(b), client.W(client.All), client.Timeout(30*time.Second))
		require.NoError(t, err)
	}
	obj, err := c.Get(ctx, "b", []byte("k"), client.Timeout(30*time.Second))
	require.NoError(t, err)
	require.False(t, obj.ValuesOmitted)
	require.Len(t, obj.Siblings, 2)
	require.ElementsMatch(t, [][]byte{big('x'), big('y')}, [][]byte{obj.Siblings[0].Value, obj.Siblings[1].Value})
}

// TestGetOfAnObjectTooLargeToSendAnswersTheContext: merges (never client
// writes) can make an object larger than any frame. A get of it still
// answers, with the context, the sibling count and ValuesOmitted, whether
// the coordinator's own merge or a replica's copy is too large to send;
// and a put with that context brings the key back.
func TestGetOfAnObjectTooLargeToSendAnswersTheContext(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		c.AAE.Enabled = false
		c.MaxValueSize = 1 << 20 // a 16 MiB frame
		// Reading 20 MiB copies under the race detector on a busy
		// machine can take longer than the default 2 s.
		c.RequestTimeout = 30 * time.Second
	})
	ctx := t.Context()
	key := []byte("huge")
	n1 := tc.nodes["n1"]
	p := n1.ring().KeyPartition("b", key)
	// Twenty 1 MiB siblings minted by twenty coordinators: 20 MiB, more
	// than the frame. Every replica gets it as replication would bring
	// it: merged in, never checked against the write limits.
	var obj dvv.Object
	for i := range 20 {
		obj = mustUpdate(obj.Update(nil, fmt.Sprintf("x%d.actor", i), bytes.Repeat([]byte{byte('a' + i)}, 1<<20), false, int64(i+1)))
	}
	require.Greater(t, obj.MsgpackSize(), n1.maxFrame)
	for _, name := range tc.names {
		_, err := tc.nodes[name].replicas.localSync(ctx, coord.Key{Partition: p, Bucket: "b", Key: key}, obj, true, "")
		require.NoError(t, err)
	}

	c := tc.client("n1")
	// Each answer moves up to 20 MiB per replica; under the race detector
	// on a busy machine that outlasts the client's default timeout.
	patient := client.Timeout(30 * time.Second)
	// R=1: n1's own copy, merged here, is too large for the answer.
	// R=3: the other replicas' copies are too large for their answers too.
	for _, r := range []client.Quorum{1, client.All} {
		got, err := c.Get(ctx, "b", key, client.R(r), patient)
		require.NoError(t, err, "r=%d", r)
		require.True(t, got.Found)
		require.True(t, got.ValuesOmitted)
		require.Equal(t, 20, got.SiblingCount)
		require.Empty(t, got.Siblings)
		require.NotEmpty(t, got.Context)
		require.True(t, got.Conflict())
	}
	require.Positive(t, registryValue(t, n1, "cairn_gets_values_omitted_total"))
	_, err := c.Update(ctx, "b", key, func(*client.Object) ([]byte, error) { return []byte("never"), nil },
		client.WithResolver(client.LastWriteWins), patient)
	require.ErrorIs(t, err, client.ErrValuesOmitted)

	_, copies, err := c.DebugReplicas(ctx, "b", key)
	require.NoError(t, err)
	for _, cp := range copies {
		require.Contains(t, cp.Error, "too large to send: 20 live siblings", cp.Node)
	}

	got, err := c.Get(ctx, "b", key, client.R(client.All), patient)
	require.NoError(t, err)
	_, err = c.Put(ctx, "b", key, []byte("collapsed"), client.Causal(got.Context), client.W(client.All), patient)
	require.NoError(t, err)
	got, err = c.Get(ctx, "b", key, client.R(client.All), patient)
	require.NoError(t, err)
	require.False(t, got.ValuesOmitted)
	require.Equal(t, []string{"collapsed"}, values(got))
	for _, name := range tc.names {
		cp, found, err := tc.nodes[name].store.Get(p, "b", key)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, []string{"collapsed"}, liveValues(cp), "on %s", name)
	}
}
