package node

import (
	"context"
	"math"
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

// storedCopies reads every running node's own copy of a key straight from
// its store.
func (tc *testCluster) storedCopies(bucket string, key []byte) map[string]dvv.Object {
	tc.t.Helper()
	out := map[string]dvv.Object{}
	for name, n := range tc.nodes {
		obj, _, err := n.store.Get(n.ring().KeyPartition(bucket, key), bucket, key)
		require.NoError(tc.t, err)
		out[name] = obj
	}
	return out
}

func requireSameCopies(t *testing.T, want, got map[string]dvv.Object) {
	t.Helper()
	require.Len(t, got, len(want))
	for name, w := range want {
		require.True(t, got[name].Equal(w), "%s: %v, was %v", name, got[name], w)
	}
}

// TestForgedContextIsRefusedAndChangesNothing: actor names are visible in
// every context a get returns, so a client can forge a context claiming a
// huge counter for a real actor. Accepted, it would make the next dot wrap
// to 0 (2^64-1) or cover that actor's future writes (1<<40), and
// acknowledged writes would vanish. Every node refuses it with an invalid
// argument and writes nothing; later writes without a context all stay.
func TestForgedContextIsRefusedAndChangesNothing(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := t.Context()
	key := []byte("forged")
	_, err := tc.client("n1").Put(ctx, "b", key, []byte("v1"), client.W(client.All))
	require.NoError(t, err)
	obj, err := tc.client("n1").Get(ctx, "b", key, client.R(client.All))
	require.NoError(t, err)
	read, err := wire.DecodeContext(obj.Context)
	require.NoError(t, err)
	require.Len(t, read, 1)
	var actor string
	for a := range read {
		actor = a
	}
	before := tc.storedCopies("b", key)

	forge := func(a string, counter uint64) []byte {
		vv := read.Clone()
		vv[a] = counter
		return wire.EncodeContext(vv)
	}
	// A coordinator refuses only once every primary answered its
	// catch-up read, which waits a quarter of the request's time: a long
	// deadline keeps a machine under heavy load from making a primary
	// look silent, which would clamp the context instead (the write would
	// then be accepted as one made with what the replicas hold).
	patient := client.Timeout(30 * time.Second)
	for _, name := range tc.names {
		c := tc.client(name)
		for _, forged := range [][]byte{forge(actor, 1<<40), forge(actor, dvv.MaxCounter), forge("n9.unknown", 1)} {
			_, err := c.Put(ctx, "b", key, []byte("evil"), client.Causal(forged), patient)
			require.ErrorIs(t, err, client.ErrInvalidArgument, "put through %s", name)
			require.ErrorContains(t, err, "context names writes no reachable replica has seen")
			_, err = c.Delete(ctx, "b", key, client.Causal(forged), patient)
			require.ErrorIs(t, err, client.ErrInvalidArgument, "delete through %s", name)
		}
		// A counter of 2^64-1 would wrap: the node's decoder refuses it
		// (the SDK does too, before sending; this client does not).
		var resp wire.PutResp
		err := rawClientCall(t, tc.nodes[name].Addr(), wire.TypePut,
			wire.PutReq{Bucket: "b", Key: key, Value: []byte("evil"), Context: forge(actor, math.MaxUint64), Opts: wire.DefaultOptions()}, &resp)
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, "raw put through %s", name)
		require.ErrorContains(t, err, "context names counter 18446744073709551615")
		_, err = c.Put(ctx, "b", key, []byte("evil"), client.Causal(forge(actor, math.MaxUint64)))
		require.ErrorIs(t, err, client.ErrInvalidArgument)
	}
	requireSameCopies(t, before, tc.storedCopies("b", key))

	// Three puts without a context, each through another node, stand
	// beside the first value and each other.
	for i, name := range tc.names {
		_, err := tc.client(name).Put(ctx, "b", key, []byte{'a' + byte(i)}, client.W(client.All))
		require.NoError(t, err)
	}
	obj, err = tc.client("n2").Get(ctx, "b", key, client.R(client.All))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"v1", "a", "b", "c"}, values(obj))

	// The context of that read collapses them: it names nothing beyond
	// what the replicas hold.
	_, err = tc.client("n3").Put(ctx, "b", key, []byte("merged"), client.Causal(obj.Context), client.W(client.All))
	require.NoError(t, err)
	obj, err = tc.client("n1").Get(ctx, "b", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"merged"}, values(obj))
	for name, n := range tc.nodes {
		require.Zero(t, counterValue(t, n.metrics.contextAhead.WithLabelValues(coord.ContextCaughtUp)), name)
	}
}

// TestStaleCoordinatorCatchesUpWithTheContext: a replica that missed writes
// coordinates a write whose context was read from the others. It reads
// their copies, merges them into its own, and the write replaces what the
// client read, as it would have on an up-to-date replica.
func TestStaleCoordinatorCatchesUpWithTheContext(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		c.AAE.Enabled = false
		c.ReadRepair = false
	})
	ctx := t.Context()
	key := []byte("stale")
	tc.stop("n3")
	tc.waitDead("n3")
	_, err := tc.client("n1").Put(ctx, "b", key, []byte("v1"), client.W(2))
	require.NoError(t, err)
	tc.restart("n3")
	tc.waitAlive("n3")
	require.False(t, tc.storedCopies("b", key)["n3"].Found(), "n3 missed the write")

	obj, err := tc.client("n1").Get(ctx, "b", key, client.R(2))
	require.NoError(t, err)
	require.Equal(t, []string{"v1"}, values(obj))
	_, err = tc.client("n3").Put(ctx, "b", key, []byte("v2"), client.Causal(obj.Context), client.W(client.All))
	require.NoError(t, err)
	require.Equal(t, 1.0, counterValue(t, tc.nodes["n3"].metrics.contextAhead.WithLabelValues(coord.ContextCaughtUp)))

	for name, c := range tc.storedCopies("b", key) {
		require.Equal(t, []string{"v2"}, liveValues(c), "%s: the write replaced what the client read", name)
	}
}

// TestPeersCannotSendObjectsThatBreakTheDotRules: a replica put (which read
// repair uses too), a handoff batch and an anti-entropy push carrying an
// object with a dot of counter 0, a counter past the range, a sibling its
// own vector does not cover or two siblings with one dot are refused, and
// nothing of the request is written.
func TestPeersCannotSendObjectsThatBreakTheDotRules(t *testing.T) {
	// The test plays a peer, p1, that no membership knows: the address
	// check would refuse its hello before its objects could be.
	tc := startCluster(t, 1, func(c *Config) { c.VerifyPeerAddress = false })
	n := tc.nodes["n1"]
	ctx := t.Context()
	key, other := []byte("k"), []byte("other")
	_, err := tc.client("n1").Put(ctx, "b", key, []byte("v"))
	require.NoError(t, err)
	p := n.ring().KeyPartition("b", key)
	for n.ring().KeyPartition("b", other) != p {
		other = append(other, 'x')
	}
	cfg := transport.DefaultConfig()
	cfg.Cluster, cfg.Node = n.cfg.Cluster, "p1"
	pool := transport.NewPool(cfg)
	t.Cleanup(func() { require.NoError(t, pool.Close()) })
	call := func(typ wire.Type, req, resp any) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return pool.Call(ctx, n.Addr(), typ, req, resp)
	}

	sib := func(actor string, counter uint64) dvv.Sibling {
		return dvv.Sibling{Dot: dvv.Dot{Actor: actor, Counter: counter}, Value: []byte("bad")}
	}
	good := mustUpdate(dvv.Object{}.Update(nil, "p1.a", []byte("fine"), false, 1))
	bad := map[string]dvv.Object{
		"counter 0":           {Siblings: []dvv.Sibling{sib("p1.a", 0)}, VV: dvv.VV{"p1.a": 1}},
		"counter past range":  {Siblings: []dvv.Sibling{sib("p1.a", 1<<63)}, VV: dvv.VV{"p1.a": math.MaxUint64}},
		"vector past range":   {Siblings: []dvv.Sibling{sib("p1.a", 1)}, VV: dvv.VV{"p1.a": 1, "p1.b": 1 << 63}},
		"sibling not covered": {Siblings: []dvv.Sibling{sib("p1.a", 5)}, VV: dvv.VV{"p1.a": 4}},
		"one dot twice":       {Siblings: []dvv.Sibling{sib("p1.a", 1), sib("p1.a", 1)}, VV: dvv.VV{"p1.a": 1}},
		"empty actor":         {Siblings: []dvv.Sibling{sib("", 1)}, VV: dvv.VV{"": 1}},
	}
	before := tc.storedCopies("b", key)
	for name, obj := range bad {
		err := call(wire.TypeReplicaPut, wire.ReplicaPutReq{Partition: p, Bucket: "b", Key: key, Object: obj}, nil)
		require.ErrorIs(t, err, cairn.ErrProtocol, "replica put: %s", name)
		require.ErrorContains(t, err, "breaks the dot rules")

		// The good item comes first in each batch: a bad one refuses the
		// whole batch before anything is written.
		err = call(wire.TypeHandoff, wire.HandoffReq{Items: []wire.HandoffItem{
			{Partition: p, Bucket: "b", Key: other, Object: good},
			{Partition: p, Bucket: "b", Key: key, Object: obj},
		}}, nil)
		require.ErrorIs(t, err, cairn.ErrProtocol, "handoff: %s", name)

		err = call(wire.TypeAAEPush, wire.AAEPushReq{Partition: p, Objects: []wire.AAEObject{
			{Bucket: "b", Key: other, Object: good},
			{Bucket: "b", Key: key, Object: obj},
		}}, nil)
		require.ErrorIs(t, err, cairn.ErrProtocol, "anti-entropy push: %s", name)
	}
	requireSameCopies(t, before, tc.storedCopies("b", key))
	_, found, err := n.store.Get(p, "b", other)
	require.NoError(t, err)
	require.False(t, found, "no item of a refused batch was written")

	// The same connection still serves: a bad object refuses the request,
	// not the connection, and a good one is merged.
	require.NoError(t, call(wire.TypeReplicaPut, wire.ReplicaPutReq{Partition: p, Bucket: "b", Key: key, Object: good}, nil))
	obj, _, err := n.store.Get(p, "b", key)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"v", "fine"}, liveValues(obj))
}
