package node

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// createCounterBucket makes bucket a counter bucket through node via and
// waits until every running node applies it.
func (tc *testCluster) createCounterBucket(via, bucket string) {
	tc.t.Helper()
	b, err := tc.client(via).CreateBucket(tc.t.Context(), bucket, client.BucketChange{Datatype: ptrTo("counter")})
	require.NoError(tc.t, err)
	require.Equal(tc.t, "counter", b.Datatype)
	require.Eventually(tc.t, func() bool {
		for _, n := range tc.nodes {
			if n.bucketMode(bucket) != dvv.CounterMode {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "a node never learnt the bucket is a counter")
}

// counterEverywhere waits until every running node's own copy of key
// holds a counter of value want, all copies equal.
func (tc *testCluster) counterEverywhere(bucket string, key []byte, want int64) {
	tc.t.Helper()
	var last map[string]dvv.Object
	ok := assertEventually(func() bool {
		last = tc.storedCopies(bucket, key)
		var first *dvv.Object
		for _, obj := range last {
			if v, ok := dvv.CounterOf(obj).Value(); !ok || v != want || len(obj.Siblings) != 1 {
				return false
			}
			if first == nil {
				first = &obj
			} else if !obj.Equal(*first) {
				return false
			}
		}
		return true
	}, 30*time.Second)
	if !ok {
		for name, obj := range last {
			v, _ := dvv.CounterOf(obj).Value()
			tc.t.Logf("%s: value %d, %d siblings", name, v, len(obj.Siblings))
		}
		tc.t.Fatalf("the copies never all held %d", want)
	}
}

func assertEventually(cond func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// Increments sent at once through every node (each coordinating with its
// own actor, none reading first) all count: a get at R=all reads their
// sum, and read repair leaves every copy holding it.
func TestCounterConcurrentIncrementsThroughEveryNode(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := t.Context()
	tc.createCounterBucket("n1", "hits")
	key := []byte("page")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sum int64
	for _, name := range tc.names {
		c := tc.client(name)
		for g := range 3 {
			wg.Go(func() {
				for i := range 20 {
					delta := int64(2)
					if (i+g)%3 == 0 {
						delta = -1
					}
					_, err := c.CounterIncr(ctx, "hits", key, delta)
					if !assertNoError(t, err) {
						return
					}
					mu.Lock()
					sum += delta
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for _, name := range tc.names {
		got, err := tc.client(name).CounterGet(ctx, "hits", key, client.R(client.All))
		require.NoError(t, err)
		require.True(t, got.Found)
		require.Equal(t, sum, got.Value, "through %s", name)
	}
	tc.counterEverywhere("hits", key, sum)

	v, err := tc.client("n2").CounterIncr(ctx, "hits", key, 5)
	require.NoError(t, err)
	require.Equal(t, sum+5, v, "an increment answers its coordinator's value after it")
	missing, err := tc.client("n3").CounterGet(ctx, "hits", []byte("never"))
	require.NoError(t, err)
	require.False(t, missing.Found)
	require.Zero(t, missing.Value)
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("increment: %v", err)
		return false
	}
	return true
}

// A counter bucket refuses puts, gets and deletes, a plain bucket refuses
// counter operations, and neither changes anything; the datatype stays.
func TestCounterBucketRefusesPlainOperations(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := t.Context()
	tc.createCounterBucket("n1", "hits")
	c := tc.client("n2")
	_, err := c.Put(ctx, "hits", []byte("k"), []byte("v"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "holds counters")
	_, err = c.Get(ctx, "hits", []byte("k"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, err = c.Delete(ctx, "hits", []byte("k"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, err = c.CounterIncr(ctx, "plain", []byte("k"), 1)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "not a counter bucket")
	_, err = c.CounterGet(ctx, "plain", []byte("k"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	for name := range tc.storedCopies("hits", []byte("k")) {
		obj := tc.storedCopies("hits", []byte("k"))[name]
		require.True(t, obj.Empty(), "%s holds %v", name, obj)
	}
	_, err = c.SetBucket(ctx, "hits", client.BucketChange{Datatype: ptrTo("")})
	require.ErrorContains(t, err, "datatype is fixed")
	_, err = c.SetBucket(ctx, "hits", client.BucketChange{Conflict: ptrTo("lww")})
	require.ErrorContains(t, err, "conflict lww does not apply")
}

// Increments made while a primary is down go to a fallback's hint, merged
// there by the counter's join; handoff delivers it, and the primary's copy
// ends up counting every increment, those it missed included.
func TestCounterHintsHandOffTheMissedIncrements(t *testing.T) {
	tc := startCluster(t, 4, nil)
	ctx := t.Context()
	tc.createCounterBucket("n1", "b")
	key := tc.keyOwnedBy(3, "n4", "n1")
	c := tc.client("n1")
	for range 10 {
		_, err := c.CounterIncr(ctx, "b", key, 1)
		require.NoError(t, err)
	}
	tc.stop("n4")
	tc.waitDead("n4")
	for range 15 {
		_, err := c.CounterIncr(ctx, "b", key, 3, client.W(client.All))
		require.NoError(t, err, "a fallback stands in for n4")
	}
	require.NotEmpty(t, tc.pendingHints(), "the increments n4 missed wait in a hint")
	tc.restart("n4")
	tc.waitAlive(tc.names...)
	require.Eventually(t, func() bool {
		obj, _, err := tc.nodes["n4"].store.Get(tc.nodes["n4"].ring().KeyPartition("b", key), "b", key)
		require.NoError(t, err)
		v, _ := dvv.CounterOf(obj).Value()
		return v == 55
	}, 60*time.Second, 50*time.Millisecond, "handoff never brought n4's copy to 55")
	got, err := tc.client("n4").CounterGet(ctx, "b", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, int64(55), got.Value)
}

// createDatatypeBucket makes bucket a datatype bucket through node via and
// waits until every running node applies it.
func (tc *testCluster) createDatatypeBucket(via, bucket, datatype string, mode dvv.Mode) {
	tc.t.Helper()
	_, err := tc.client(via).CreateBucket(tc.t.Context(), bucket, client.BucketChange{Datatype: &datatype})
	require.NoError(tc.t, err)
	require.Eventually(tc.t, func() bool {
		for _, n := range tc.nodes {
			if n.bucketMode(bucket) != mode {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "a node never learnt the bucket's datatype")
}

func elements(s *client.Set) []string {
	out := []string{}
	for _, e := range s.Elements {
		out = append(out, string(e))
	}
	return out
}

// Removes and adds at once, through every node: removes with the context
// of a read taken before any of the concurrent adds, adds of elements
// being removed and of new ones. Every element whose add that read did
// not observe stays; every element the read saw and a remove named, and
// nobody added again, is gone, on every copy.
func TestSetKeepsAddsNoRemoveObserved(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := t.Context()
	tc.createDatatypeBucket("n1", "tags", "set", dvv.SetMode)
	key := []byte("doc")
	name := func(i int) []byte { return fmt.Appendf(nil, "e%02d", i) }
	for i := range 30 {
		_, err := tc.client(tc.names[i%3]).SetAdd(ctx, "tags", key, name(i))
		require.NoError(t, err)
	}
	seen, err := tc.client("n1").SetGet(ctx, "tags", key, client.R(client.All))
	require.NoError(t, err)
	require.Len(t, seen.Elements, 30)

	var wg sync.WaitGroup
	for w, node := range tc.names {
		c := tc.client(node)
		wg.Go(func() { // removes e00-e19 with the old context, a third each
			for i := w; i < 20; i += 3 {
				_, err := c.SetRemove(ctx, "tags", key, name(i), client.Causal(seen.Context))
				assert.NoError(t, err)
			}
		})
		wg.Go(func() { // adds e10-e19 again, and e30-e39
			for i := 10 + w; i < 40; i += 3 {
				if i >= 20 && i < 30 {
					continue
				}
				_, err := c.SetAdd(ctx, "tags", key, name(i))
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	var want []string
	for i := 10; i < 40; i++ {
		want = append(want, string(name(i)))
	}
	for _, node := range tc.names {
		got, err := tc.client(node).SetGet(ctx, "tags", key, client.R(client.All))
		require.NoError(t, err)
		require.Equal(t, want, elements(got), "through %s", node)
	}
	require.Eventually(t, func() bool {
		for _, obj := range tc.storedCopies("tags", key) {
			if fmt.Sprint(elementsOf(obj)) != fmt.Sprint(want) {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "read repair leaves every copy with the same set")

	// A remove without a context removes what the coordinator holds; a
	// remove with the context of an empty read removes nothing.
	_, err = tc.client("n2").SetRemove(ctx, "tags", key, name(39))
	require.NoError(t, err)
	empty, err := tc.client("n2").SetGet(ctx, "tags", []byte("other"))
	require.NoError(t, err)
	require.False(t, empty.Found)
	_, err = tc.client("n3").SetAdd(ctx, "tags", []byte("other"), []byte("x"))
	require.NoError(t, err)
	_, err = tc.client("n1").SetRemove(ctx, "tags", []byte("other"), []byte("x"), client.Causal(empty.Context))
	require.NoError(t, err)
	got, err := tc.client("n1").SetGet(ctx, "tags", []byte("other"), client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, elements(got), "the remover saw no add of x")
	got, err = tc.client("n1").SetGet(ctx, "tags", key, client.R(client.All))
	require.NoError(t, err)
	require.NotContains(t, elements(got), "e39")
}

func elementsOf(obj dvv.Object) []string {
	var out []string
	for _, e := range dvv.SetOf(obj).Elements() {
		out = append(out, string(e))
	}
	return out
}

// A set bucket refuses puts, gets and counter operations; set operations
// refuse other buckets.
func TestSetBucketRefusesOtherOperations(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := t.Context()
	tc.createDatatypeBucket("n1", "tags", "set", dvv.SetMode)
	c := tc.client("n2")
	_, err := c.Put(ctx, "tags", []byte("k"), []byte("v"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "holds sets")
	_, err = c.Get(ctx, "tags", []byte("k"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, err = c.CounterIncr(ctx, "tags", []byte("k"), 1)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, err = c.SetAdd(ctx, "plain", []byte("k"), []byte("e"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "not a set bucket")
	_, err = c.SetGet(ctx, "plain", []byte("k"))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, err = c.SetRemove(ctx, "tags", []byte("k"), []byte("e"), client.Causal([]byte{0xff}))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	for name, obj := range tc.storedCopies("tags", []byte("k")) {
		require.True(t, obj.Empty(), "%s holds %v", name, obj)
	}
	_, err = c.SetBucket(ctx, "tags", client.BucketChange{Datatype: ptrTo("counter")})
	require.ErrorContains(t, err, "datatype is fixed")
}

// Replicas holding different counter and set states of keys (as a
// partition would leave them; n1's counter copies with two siblings, as a
// node merging before it knew the datatype would) converge by
// anti-entropy alone to the join: every node's increments counted once,
// every node's adds kept. Their trees then agree.
func TestDatatypesAntiEntropyConverges(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		aaeOnly(c)
		c.AAE.Interval = 200 * time.Millisecond
	})
	tc.createDatatypeBucket("n1", "hits", "counter", dvv.CounterMode)
	tc.createDatatypeBucket("n1", "tags", "set", dvv.SetMode)
	const keys = 20
	plant := func(bucket string, key []byte, n *Node, obj dvv.Object) {
		p := n.ring().KeyPartition(bucket, key)
		_, err := n.store.Modify(p, bucket, key, true, func(dvv.Object, bool) (dvv.Object, bool, error) { return obj, true, nil })
		require.NoError(t, err)
	}
	for i := range keys {
		key := fmt.Appendf(nil, "diverged-%d", i)
		for j, name := range tc.names {
			actor := name + ".test"
			counter := dvv.Counter{actor: {P: uint64(i + j + 1), N: 1}}
			obj := dvv.Object{VV: dvv.VV{actor: 1}, Siblings: []dvv.Sibling{{Dot: dvv.Dot{Actor: actor, Counter: 1}, Value: counter.Encode()}}}
			if j == 0 {
				older := dvv.Counter{actor: {P: 1}, "gone.test": {P: 10}}
				obj.VV[actor] = 2
				obj.Siblings = append(obj.Siblings, dvv.Sibling{Dot: dvv.Dot{Actor: actor, Counter: 2}, Value: older.Encode()})
			}
			plant("hits", key, tc.nodes[name], obj)
			d := dvv.Dot{Actor: actor, Counter: 1}
			set := dvv.Set{}.Add([]byte(name), d)
			plant("tags", key, tc.nodes[name], dvv.Object{VV: dvv.VV{actor: 1}, Siblings: []dvv.Sibling{{Dot: d, Value: set.Encode()}}})
		}
	}
	tc.waitTreesAgree(60 * time.Second)
	for i := range keys {
		key := fmt.Appendf(nil, "diverged-%d", i)
		// Each node's total less its one decrement, and n1's second
		// sibling's other actor.
		tc.counterEverywhere("hits", key, int64((i+1)+(i+2)+(i+3)-3+10))
		for name, obj := range tc.storedCopies("tags", key) {
			require.Equal(t, tc.names, elementsOf(obj), "%s's copy of key %d", name, i)
			require.Len(t, obj.Siblings, 1)
		}
	}
	for _, n := range tc.nodes {
		requireTreesMatchStore(t, n)
	}
}

// A remove whose context names an add the coordinator's copy missed (it
// was down for it, and nothing repaired it since) catches up with the
// other replicas first, then removes the add: the client saw it.
func TestSetRemoveCatchesUpWithTheContext(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.AAE.Enabled = false })
	ctx := t.Context()
	tc.createDatatypeBucket("n1", "tags", "set", dvv.SetMode)
	key := []byte("doc")
	_, err := tc.client("n1").SetAdd(ctx, "tags", key, []byte("kept"), client.W(client.All))
	require.NoError(t, err)
	tc.stop("n3")
	tc.waitDead("n3")
	_, err = tc.client("n1").SetAdd(ctx, "tags", key, []byte("x"))
	require.NoError(t, err)
	seen, err := tc.client("n1").SetGet(ctx, "tags", key, client.R(client.One))
	require.NoError(t, err)
	require.Equal(t, []string{"kept", "x"}, elements(seen))
	tc.restart("n3")
	tc.waitAlive(tc.names...)
	require.Equal(t, []string{"kept"}, elementsOf(tc.storedCopies("tags", key)["n3"]), "n3 missed the add of x")

	_, err = tc.client("n3").SetRemove(ctx, "tags", key, []byte("x"), client.Causal(seen.Context))
	require.NoError(t, err)
	got, err := tc.client("n2").SetGet(ctx, "tags", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, elements(got))
	require.Equal(t, []string{"kept"}, elementsOf(tc.storedCopies("tags", key)["n3"]))

	forged := wire.EncodeSetContext(dvv.VV{"nobody.x": 5})
	_, err = tc.client("n3").SetRemove(ctx, "tags", key, []byte("kept"), client.Causal(forged))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument, "a context naming adds no replica has seen")
	got, err = tc.client("n2").SetGet(ctx, "tags", key, client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, elements(got), "a refused remove changes nothing")
}
