package node

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// createLWWBucket configures bucket as last-write-wins through node via
// and waits until every running node applies it.
func (tc *testCluster) createLWWBucket(via, bucket string) {
	tc.t.Helper()
	lww := "lww"
	b, err := tc.client(via).CreateBucket(tc.t.Context(), bucket, client.BucketChange{Conflict: &lww})
	require.NoError(tc.t, err)
	require.Equal(tc.t, "lww", b.Conflict)
	require.Eventually(tc.t, func() bool {
		for _, n := range tc.nodes {
			if n.bucketMode(bucket) != dvv.LWW {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "a node never learnt the bucket is last-write-wins")
}

// stampOf reads the stamp of a context a write or a read answered.
func stampOf(t *testing.T, ctx client.Context) int64 {
	t.Helper()
	_, stamp, err := wire.DecodeContextStamp(ctx)
	require.NoError(t, err)
	return stamp
}

// requireOneValueEverywhere waits until every running node's copy of key
// holds exactly one sibling, all copies equal, and returns it.
func (tc *testCluster) requireOneValueEverywhere(bucket string, key []byte) dvv.Sibling {
	tc.t.Helper()
	var copies map[string]dvv.Object
	require.Eventually(tc.t, func() bool {
		copies = tc.storedCopies(bucket, key)
		var first *dvv.Object
		for _, obj := range copies {
			if len(obj.Siblings) != 1 {
				return false
			}
			if first == nil {
				first = &obj
			} else if !obj.Equal(*first) {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "replicas do not hold one and the same value")
	for _, obj := range copies {
		return obj.Siblings[0]
	}
	return dvv.Sibling{}
}

// Writes without a context, from three coordinators at once, are
// concurrent: a siblings bucket keeps them all, a last-write-wins bucket
// keeps one, the one with the highest stamp, and after a read with
// R=all (read repair) every replica holds exactly that one.
func TestLWWConcurrentWritesLeaveOneValueOnEveryReplica(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := t.Context()
	tc.createLWWBucket("n1", "last")
	for round := range 10 {
		key := fmt.Appendf(nil, "k%d", round)
		type ack struct {
			value string
			stamp int64
		}
		acks := make([]ack, len(tc.names))
		var wg sync.WaitGroup
		for i, name := range tc.names {
			c := tc.client(name)
			wg.Go(func() {
				v := fmt.Sprintf("%s-%d", name, round)
				vv, err := c.Put(ctx, "last", key, []byte(v), client.W(1))
				require.NoError(t, err)
				acks[i] = ack{v, stampOf(t, vv)}
				_, err = c.Put(ctx, "plain", key, []byte(v), client.W(1))
				require.NoError(t, err)
			})
		}
		wg.Wait()
		latest := acks[0]
		for _, a := range acks[1:] {
			if a.stamp > latest.stamp {
				latest = a
			}
		}

		obj, err := tc.client("n2").Get(ctx, "last", key, client.R(client.All))
		require.NoError(t, err)
		require.Len(t, obj.Siblings, 1, "round %d: a last-write-wins object has one value", round)
		kept := tc.requireOneValueEverywhere("last", key)
		require.Equal(t, string(kept.Value), string(obj.Value))
		require.GreaterOrEqual(t, kept.WrittenAt, latest.stamp, "round %d: the value kept is the latest write", round)
		if kept.WrittenAt == latest.stamp {
			// Equal stamps from two coordinators are broken by dot; a
			// unique highest stamp decides alone.
			unique := true
			for _, a := range acks {
				unique = unique && (a == latest || a.stamp != latest.stamp)
			}
			if unique {
				require.Equal(t, latest.value, string(kept.Value), "round %d", round)
			}
		}
		require.Equal(t, kept.WrittenAt, stampOf(t, obj.Context), "a read's context carries the stamp of what it read")

		plain, err := tc.client("n2").Get(ctx, "plain", key, client.R(client.All))
		require.NoError(t, err)
		require.Len(t, plain.Siblings, len(tc.names), "round %d: a siblings bucket keeps every concurrent write", round)
		require.Zero(t, stampOf(t, plain.Context), "a siblings bucket's context carries no stamp")
	}
}

// plantDivergentCopies writes, straight into every node's store, a
// different last-write-wins object under each of keys (as a partition
// would leave them): node j's copy of key i holds one sibling of its own
// actor stamped 1000+(i+j)%3, and n1's one more, older, as if kept from
// before the bucket turned last-write-wins.
func (tc *testCluster) plantDivergentCopies(bucket string, keys int) {
	tc.t.Helper()
	for i := range keys {
		key := fmt.Appendf(nil, "diverged-%d", i)
		for j, name := range tc.names {
			n := tc.nodes[name]
			actor := name + ".test"
			obj := dvv.Object{VV: dvv.VV{actor: 1}, Siblings: []dvv.Sibling{
				{Dot: dvv.Dot{Actor: actor, Counter: 1}, Value: []byte(name), WrittenAt: int64(1000 + (i+j)%3)}}}
			if j == 0 {
				obj.VV[actor] = 2
				obj.Siblings = append(obj.Siblings, dvv.Sibling{Dot: dvv.Dot{Actor: actor, Counter: 2}, Value: []byte("old"), WrittenAt: 999})
			}
			p := n.ring().KeyPartition(bucket, key)
			_, err := n.store.Modify(p, bucket, key, true, func(dvv.Object, bool) (dvv.Object, bool, error) { return obj, true, nil })
			require.NoError(tc.t, err)
		}
	}
}

// requireConverged checks that every replica of plantDivergentCopies's
// keys holds the one object they all resolve to: the latest sibling of
// all (stamps 1000+(i+j)%3 over three nodes: 1002, never tied) and the
// join of the vectors.
func (tc *testCluster) requireConverged(bucket string, keys int) {
	tc.t.Helper()
	for i := range keys {
		key := fmt.Appendf(nil, "diverged-%d", i)
		kept := tc.requireOneValueEverywhere(bucket, key)
		require.Equal(tc.t, int64(1002), kept.WrittenAt, "key %d", i)
		for _, obj := range tc.storedCopies(bucket, key) {
			require.Equal(tc.t, dvv.VV{"n1.test": 2, "n2.test": 1, "n3.test": 1}, obj.VV, "key %d: the join of the vectors", i)
		}
	}
}

// Replicas that hold different last-write-wins objects of a key converge
// by anti-entropy alone to the object they all resolve to; their trees
// then agree, so exchanges stop finding them.
func TestLWWAntiEntropyConverges(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		aaeOnly(c)
		c.AAE.Interval = 200 * time.Millisecond
	})
	tc.createLWWBucket("n1", "last")
	const keys = 30
	tc.plantDivergentCopies("last", keys)
	tc.waitTreesAgree(60 * time.Second)
	tc.requireConverged("last", keys)
	for _, n := range tc.nodes {
		requireTreesMatchStore(t, n)
		require.Zero(t, counterValue(t, n.metrics.readRepairs.WithLabelValues("ok")), "no read repair")
	}
}

// The same divergent copies, anti-entropy off: a get with R=all answers
// the one resolved value, and read repair leaves it on every replica.
func TestLWWReadRepairConverges(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.AAE.Enabled = false })
	tc.createLWWBucket("n1", "last")
	const keys = 10
	tc.plantDivergentCopies("last", keys)
	for i := range keys {
		obj, err := tc.client("n2").Get(t.Context(), "last", fmt.Appendf(nil, "diverged-%d", i), client.R(client.All))
		require.NoError(t, err)
		require.Len(t, obj.Siblings, 1, "key %d", i)
		require.Equal(t, int64(1002), stampOf(t, obj.Context))
	}
	tc.requireConverged("last", keys)
}

// Clocks 40 minutes apart: n1 runs 20 minutes ahead, n3 20 behind. A write
// that causally follows another, through its client's context or on the
// same copy, wins through the slow node all the same; so does one whose
// coordinator never held what the client read (every other replica down,
// the context clamped), since the context carries the read's stamp. A
// context whose stamp no copy and no sane clock vouches for is refused.
func TestLWWCausallyLaterWriteThroughASlowClockWins(t *testing.T) {
	// Within maxStampAhead of each other: a context read from n1 is
	// within n3's bound.
	skew := map[string]time.Duration{"n1": 20 * time.Minute, "n2": 0, "n3": -20 * time.Minute}
	tc := startCluster(t, 3, func(c *Config) {
		d := skew[c.Name]
		c.wallClock = func() time.Time { return time.Now().Add(d) }
		c.AAE.Enabled = false
	})
	ctx := t.Context()
	tc.createLWWBucket("n1", "last")

	// The slow coordinator's copy holds the write it follows.
	key := []byte("follows")
	_, err := tc.client("n1").Put(ctx, "last", key, []byte("x"), client.W(client.All))
	require.NoError(t, err)
	read, err := tc.client("n1").Get(ctx, "last", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, "x", string(read.Value))
	require.Greater(t, stampOf(t, read.Context), time.Now().Add(10*time.Minute).UnixNano(), "n1's clock is ahead")
	_, err = tc.client("n3").Put(ctx, "last", key, []byte("y"), client.Causal(read.Context), client.W(client.All))
	require.NoError(t, err)
	got, err := tc.client("n2").Get(ctx, "last", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"y"}, values(got), "the write that followed x wins, though its coordinator's clock is 40 minutes behind x's")
	// A blind write through the slow node follows what its copy holds.
	_, err = tc.client("n3").Put(ctx, "last", key, []byte("z"), client.W(client.All))
	require.NoError(t, err)
	for name, obj := range tc.storedCopies("last", key) {
		// W=all: every copy took the write, the coordinator's own too,
		// each resolved as it was stored.
		require.Len(t, obj.Siblings, 1, "%s stores one value", name)
	}
	got, err = tc.client("n1").Get(ctx, "last", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"z"}, values(got))
	require.Equal(t, "z", string(tc.requireOneValueEverywhere("last", key).Value))

	// A stamp no copy holds and beyond an hour past n2's clock: refused,
	// nothing written.
	vv, _, err := wire.DecodeContextStamp(got.Context)
	require.NoError(t, err)
	late := time.Now().Add(3 * time.Hour).UnixNano()
	_, err = tc.client("n2").Put(ctx, "last", key, []byte("evil"), client.Causal(wire.EncodeContextStamp(vv, late)))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "ahead of this node's clock")
	got, err = tc.client("n1").Get(ctx, "last", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"z"}, values(got), "a refused write changes nothing")

	// The slow coordinator's copy lacks what the client read: x2 is
	// written while n3 is down, and y2 through n3 while n1 and n2 are.
	key = []byte("stamped")
	tc.stop("n3")
	tc.waitDead("n3")
	_, err = tc.client("n1").Put(ctx, "last", key, []byte("x2"), client.W(2))
	require.NoError(t, err)
	read, err = tc.client("n1").Get(ctx, "last", key, client.R(2))
	require.NoError(t, err)
	require.Equal(t, "x2", string(read.Value))
	tc.stop("n2")
	tc.restart("n3")
	tc.waitAlive("n1", "n3")
	tc.stop("n1")
	tc.waitDeadFrom([]string{"n3"}, "n1")
	tc.waitDeadFrom([]string{"n3"}, "n2")
	copies := tc.storedCopies("last", key)
	require.False(t, copies["n3"].Found(), "n3 never saw x2")
	_, err = tc.client("n3").Put(ctx, "last", key, []byte("y2"), client.Causal(read.Context), client.W(1), client.Timeout(10*time.Second))
	require.NoError(t, err)
	tc.restart("n1")
	tc.restart("n2")
	tc.waitAlive(tc.names...)
	got, err = tc.client("n2").Get(ctx, "last", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"y2"}, values(got), "the context's stamp put y2 past x2, which n3 never held")
	require.Equal(t, "y2", string(tc.requireOneValueEverywhere("last", key).Value))
}

// Fallbacks keep last-write-wins hints too: writes made while every
// primary of a key is down leave one value in the hint, and handoff
// resolves it against what the primaries held from before, the same way
// a replica would: the latest write wins everywhere.
func TestLWWHintsResolveTheSameWay(t *testing.T) {
	tc := startCluster(t, 5, func(c *Config) {
		c.Handoff.Interval = 100 * time.Millisecond
		c.Handoff.RetryBase = 50 * time.Millisecond
		c.AAE.Enabled = false
	})
	ctx := t.Context()
	tc.createLWWBucket("n1", "last")
	key := []byte("hinted")
	r := tc.nodes["n1"].ring()
	primaries, others := r.Preference(r.KeyPartition("last", key), 3)
	_, err := tc.client(primaries[0]).Put(ctx, "last", key, []byte("old"), client.W(client.All))
	require.NoError(t, err)
	for _, p := range primaries {
		tc.stop(p)
	}
	for _, p := range primaries {
		tc.waitDead(p)
	}
	for i, v := range []string{"a", "b"} {
		_, err := tc.client(others[i%len(others)]).Put(ctx, "last", key, []byte(v), client.W(2))
		require.NoError(t, err)
	}
	got, err := tc.client(others[0]).Get(ctx, "last", key, client.R(2))
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, values(got), "the fallbacks' hints hold the latest write only")
	// Two fallbacks stand in for two of the three primaries (W=2): the
	// third gets the writes from read repair, below.
	hinted := map[string]bool{}
	for h := range tc.pendingHints() {
		hinted[h[strings.Index(h, "->")+2:]] = true
	}
	require.Len(t, hinted, 2)

	for _, p := range primaries {
		tc.restart(p)
	}
	tc.waitAlive(tc.names...)
	require.Eventually(t, func() bool { return len(tc.pendingHints()) == 0 }, 30*time.Second, 50*time.Millisecond)
	copies := tc.storedCopies("last", key)
	for p := range hinted {
		require.Len(t, copies[p].Siblings, 1, "%s holds one value after handoff", p)
		require.Equal(t, "b", string(copies[p].Siblings[0].Value), "on %s, the hint's later write won over the value it held", p)
	}
	got, err = tc.client(primaries[1]).Get(ctx, "last", key, client.R(client.All), client.PR(3))
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, values(got))
	require.Eventually(t, func() bool {
		copies := tc.storedCopies("last", key)
		for _, p := range primaries {
			if len(copies[p].Siblings) != 1 || string(copies[p].Siblings[0].Value) != "b" {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "read repair leaves the latest write on every primary")
}

// The conflict mode can change on a bucket that holds data: siblings
// kept before it turned last-write-wins resolve to the latest at the next
// read (and read repair stores that), and when it turns back, concurrent
// writes become siblings again.
func TestLWWModeChangesOnABucketWithData(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.AAE.Enabled = false })
	ctx := t.Context()
	_, err := tc.client("n1").CreateBucket(ctx, "switch", client.BucketChange{})
	require.NoError(t, err)
	key := []byte("k")
	for _, name := range tc.names {
		_, err := tc.client(name).Put(ctx, "switch", key, []byte(name), client.W(client.All))
		require.NoError(t, err)
	}
	before, err := tc.client("n1").Get(ctx, "switch", key, client.R(client.All))
	require.NoError(t, err)
	require.Len(t, before.Siblings, 3)
	latest := before.Siblings[0]
	for _, s := range before.Siblings[1:] {
		if s.WrittenAt.After(latest.WrittenAt) {
			latest = s
		}
	}

	lww, siblings := "lww", "siblings"
	_, err = tc.client("n1").SetBucket(ctx, "switch", client.BucketChange{Conflict: &lww})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, n := range tc.nodes {
			if n.bucketMode("switch") != dvv.LWW {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
	got, err := tc.client("n3").Get(ctx, "switch", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{string(latest.Value)}, values(got), "the latest of the siblings kept from before")
	require.Equal(t, string(latest.Value), string(tc.requireOneValueEverywhere("switch", key).Value))

	_, err = tc.client("n1").SetBucket(ctx, "switch", client.BucketChange{Conflict: &siblings})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, n := range tc.nodes {
			if n.bucketMode("switch") != dvv.Siblings {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
	_, err = tc.client("n1").Put(ctx, "switch", key, []byte("again"), client.W(client.All))
	require.NoError(t, err)
	got, err = tc.client("n3").Get(ctx, "switch", key, client.R(client.All))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{string(latest.Value), "again"}, values(got), "siblings again")
}
