package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/faultnet"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// aaeOnly tunes a test cluster so that anti-entropy alone repairs
// replicas: no read repair, no hint delivery, and exchanges as fast as the
// machine allows. Routine exchanges come once per hour, so a repair comes
// from a node's first pass over its partitions or a peer's return.
func aaeOnly(c *Config) {
	c.Partitions = 64
	c.ReadRepair = false
	c.HintedHandoff = false
	c.AAE.Interval = time.Hour
	c.AAE.ExchangesPerSecond = 1000
	c.AAE.ExchangeBurst = 64
	c.AAE.MaxConcurrent = 4
	c.AAE.RetryAfter = 100 * time.Millisecond
}

// aaeStatus is n's anti-entropy status, its trees included.
func aaeStatus(t testing.TB, n *Node) wire.AAEStatusResp {
	t.Helper()
	st, err := n.aae.ServeStatus(context.Background(), transport.Peer{}, wire.AAEStatusReq{Trees: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// treeInfo is partition p's tree on node n: nil for a partition the node
// has no tree for (it holds nothing there).
func treeInfo(t testing.TB, n *Node, p uint32) *wire.AAETreeInfo {
	for _, tr := range aaeStatus(t, n).TreeList {
		if tr.Partition == p {
			return &tr
		}
	}
	return nil
}

// treeRoot is partition p's root on node n: 0 and ready for a partition
// the node has no tree for.
func treeRoot(t testing.TB, n *Node, p uint32) (uint64, bool) {
	tr := treeInfo(t, n, p)
	if tr == nil {
		return 0, true
	}
	return tr.Root, tr.Ready
}

// treesAgree reports whether, for every partition, the running primaries
// hold ready trees with equal roots; why says where it is not so.
func (tc *testCluster) treesAgree(names ...string) (ok bool, why string) {
	r := tc.nodes[names[0]].ring()
	trees := map[string]map[uint32]wire.AAETreeInfo{}
	for _, name := range names {
		if n := tc.nodes[name]; n != nil {
			trees[name] = map[uint32]wire.AAETreeInfo{}
			for _, tr := range aaeStatus(tc.t, n).TreeList {
				trees[name][tr.Partition] = tr
			}
		}
	}
	for p := range uint32(r.Partitions()) {
		primaries, _ := r.Preference(p, 3)
		var roots []uint64
		for _, name := range primaries {
			n := tc.nodes[name]
			if n == nil || !slices.Contains(names, name) {
				continue
			}
			tr, ok := trees[name][p]
			root, ready := tr.Root, tr.Ready || !ok
			if !ready {
				return false, fmt.Sprintf("partition %d: %s's tree is not ready", p, name)
			}
			roots = append(roots, root)
		}
		for _, root := range roots {
			if root != roots[0] {
				return false, fmt.Sprintf("partition %d: roots %x on %v", p, roots, primaries)
			}
		}
	}
	return true, ""
}

func (tc *testCluster) waitTreesAgree(timeout time.Duration) {
	tc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := tc.treesAgree(tc.names...)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("replicas did not converge within %v: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireTreesMatchStore rebuilds every tree of a node from its storage
// and compares roots and key counts: the write hook must have counted each
// write exactly once.
func requireTreesMatchStore(t *testing.T, n *Node) {
	t.Helper()
	trees := map[uint32]wire.AAETreeInfo{}
	for _, tr := range aaeStatus(t, n).TreeList {
		trees[tr.Partition] = tr
	}
	for p := range uint32(n.cfg.Partitions) {
		b, err := antientropy.NewBuilder(antientropy.DefaultShape())
		require.NoError(t, err)
		require.NoError(t, n.store.ScanPartition(p, func(bucket string, key []byte, obj dvv.Object) (bool, error) {
			b.Add(bucket, key, antientropy.Version(obj))
			return true, nil
		}))
		tr, ok := trees[p]
		if !ok {
			require.Zero(t, b.Keys(), "%s partition %d has data and no tree", n.cfg.Name, p)
			continue
		}
		require.True(t, tr.Ready, "%s partition %d", n.cfg.Name, p)
		require.Equal(t, b.Tree().Root(), tr.Root, "%s partition %d: the tree differs from one rebuilt from storage", n.cfg.Name, p)
		require.Equal(t, b.Keys(), tr.Keys, "%s partition %d: the tree counts other keys than storage holds", n.cfg.Name, p)
	}
}

func (tc *testCluster) aaeKeysRepaired() (fetched, pushed uint64) {
	for _, n := range tc.nodes {
		st := aaeStatus(tc.t, n)
		fetched += st.KeysFetched
		pushed += st.KeysPushed
	}
	return fetched, pushed
}

// aaeFailures is how many exchanges the live nodes initiated failed.
func (tc *testCluster) aaeFailures() (failures uint64) {
	for _, n := range tc.nodes {
		failures += aaeStatus(tc.t, n).Failures
	}
	return failures
}

func aaeKey(i int) []byte { return fmt.Appendf(nil, "aae-%d", i) }

func TestAAERepairsAReplicaThatMissedWrites(t *testing.T) {
	tc := startCluster(t, 3, aaeOnly)
	ctx := t.Context()
	tc.stop("n3")
	tc.waitDead("n3")
	c := tc.client("n1")
	const keys = 200
	for i := range keys {
		_, err := c.Put(ctx, "b", aaeKey(i), fmt.Appendf(nil, "v%d", i), client.W(2))
		require.NoError(t, err)
	}
	ok, _ := tc.treesAgree(tc.names...)
	require.True(t, ok, "n1 and n2 hold the same writes")
	beforeF, beforeP := tc.aaeKeysRepaired()
	beforeFailures := tc.aaeFailures()

	tc.restart("n3")
	tc.waitAlive(tc.names...)
	tc.waitTreesAgree(60 * time.Second)

	for _, n := range tc.nodes {
		requireTreesMatchStore(t, n)
		require.Zero(t, counterValue(t, n.metrics.readRepairs.WithLabelValues("ok")), "no read repair")
	}
	for i := range keys {
		p := tc.nodes["n1"].ring().KeyPartition("b", aaeKey(i))
		want, found, err := tc.nodes["n1"].store.Get(p, "b", aaeKey(i))
		require.NoError(t, err)
		require.True(t, found)
		got, found, err := tc.nodes["n3"].store.Get(p, "b", aaeKey(i))
		require.NoError(t, err)
		require.True(t, found, "n3 got key %d", i)
		require.True(t, got.Equal(want), "key %d", i)
	}
	// An initiator counts a push once its answer is back, which may be
	// just after the trees agree: poll.
	var fetched, pushed, moved uint64
	counted := func() bool {
		fetched, pushed = tc.aaeKeysRepaired()
		moved = fetched + pushed - beforeF - beforeP
		return moved >= keys
	}
	deadline := time.Now().Add(10 * time.Second)
	for !counted() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if moved < keys {
		// Only a push whose answer came back is counted: one that landed
		// on n3 while its caller gave up (a deadline on a loaded machine)
		// repaired keys no exchange will move again, since the trees now
		// agree. The count is exact only when no exchange failed.
		failed := tc.aaeFailures() - beforeFailures
		require.NotZero(t, failed, "every missing key crossed once: %d of %d counted, and no exchange failed", moved, keys)
		t.Logf("%d of %d keys counted as moved; %d exchanges failed since n3 came back", moved, keys, failed)
	}
	require.LessOrEqual(t, moved, uint64(2*keys), "leases keep two replicas from repairing the same partition of a third at once")
	t.Logf("%d keys differing, %d transferred (fetched %d, pushed %d)", keys, moved, fetched-beforeF, pushed-beforeP)
}

func TestAAETreesSurviveACleanRestart(t *testing.T) {
	tc := startCluster(t, 1, aaeOnly)
	ctx := t.Context()
	c := tc.client("n1")
	for i := range 100 {
		_, err := c.Put(ctx, "b", aaeKey(i), []byte("v"))
		require.NoError(t, err)
	}
	n := tc.nodes["n1"]
	requireTreesMatchStore(t, n)
	roots := map[uint32]uint64{}
	for p := range uint32(n.cfg.Partitions) {
		roots[p], _ = treeRoot(t, n, p)
	}

	tc.stop("n1")
	tc.restart("n1")
	n = tc.nodes["n1"]
	st := aaeStatus(t, n)
	require.Zero(t, st.Rebuilds, "no rebuild after a clean shutdown")
	require.Zero(t, st.NotReady)
	for p := range uint32(n.cfg.Partitions) {
		root, ready := treeRoot(t, n, p)
		require.True(t, ready)
		require.Equal(t, roots[p], root, "partition %d", p)
	}
	// The saved copies are gone before the first write: a crash from now
	// on finds nothing stale.
	require.NoError(t, n.store.AAERecords(func(r store.AAERecord) error {
		t.Errorf("saved record %x still there", r.Key)
		return nil
	}))
	c = tc.client("n1")
	for i := range 20 {
		_, err := c.Put(ctx, "b", aaeKey(i), []byte("again"))
		require.NoError(t, err)
	}
	requireTreesMatchStore(t, n)
}

func TestAAERebuildsTreesInTheBackgroundWhileServing(t *testing.T) {
	tc := startCluster(t, 1, func(c *Config) {
		aaeOnly(c)
		// 300 keys at 30 a second: at least nine seconds of rebuild.
		c.AAE.RebuildKeysPerSecond = 30
	})
	ctx := t.Context()
	c := tc.client("n1")
	for i := range 300 {
		_, err := c.Put(ctx, "b", aaeKey(i), []byte("v"))
		require.NoError(t, err)
	}
	withData := 0
	for _, tr := range aaeStatus(t, tc.nodes["n1"]).TreeList {
		if tr.Keys > 0 {
			withData++
		}
	}
	dir := tc.cfgs["n1"].DataDir
	tc.stop("n1")
	// Lose the saved trees, as a crash does.
	st, err := store.Open(store.DefaultOptions(dir, "n1"))
	require.NoError(t, err)
	require.NoError(t, st.DeleteAAERecords())
	require.NoError(t, st.Close())

	tc.restart("n1")
	n := tc.nodes["n1"]
	require.Positive(t, aaeStatus(t, n).NotReady, "the trees are rebuilt in the background")
	c = tc.client("n1")
	served := 0
	for i := 0; ; i++ {
		if aaeStatus(t, n).NotReady == 0 {
			break
		}
		// Overwrites, new keys and reads, all while the rebuild runs.
		_, err := c.Put(ctx, "b", aaeKey(i%400), fmt.Appendf(nil, "during-%d", i))
		require.NoError(t, err)
		_, err = c.Get(ctx, "b", aaeKey(i%300))
		require.NoError(t, err)
		served++
	}
	require.Positive(t, served)
	status := aaeStatus(t, n)
	require.Equal(t, uint64(withData), status.Rebuilds, "every partition that had data was rebuilt, once")
	requireTreesMatchStore(t, n)
	t.Logf("%d puts and gets served during the rebuild of %d partitions", served, status.Rebuilds)
}

// withFaultNet puts a node behind fn.
func withFaultNet(t *testing.T, fn *faultnet.Net, c *Config) {
	name := c.Name
	c.refusePeer = func(peer string) bool { return fn.Blocked(name, peer) }
	c.tuneMemberlist = func(mc *memberlist.Config) {
		faultnet.FastTimings(mc)
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger,
		})
		require.NoError(t, err)
		fn.Alias(fmt.Sprintf("%s:%d", mc.BindAddr, nt.GetAutoBindPort()), name)
		mc.Transport = &faultnet.Transport{NetTransport: nt, Net: fn, Self: name}
	}
}

// TestAAEHealsASplitClusterKeepingConcurrentWrites splits five nodes 2|3,
// lets both sides overwrite the same keys from the same context, heals,
// and checks that anti-entropy alone (no read repair, no handoff) brings
// every primary to both writes, as siblings.
func TestAAEHealsASplitClusterKeepingConcurrentWrites(t *testing.T) {
	fn := &faultnet.Net{}
	tc := startCluster(t, 5, func(c *Config) {
		aaeOnly(c)
		withFaultNet(t, fn, c)
	})
	ctx := t.Context()
	sideA, sideB := []string{"n1", "n2"}, []string{"n3", "n4", "n5"}
	// Keys with a primary on each side: both sides hold a replica to
	// write, and only anti-entropy can bring them together.
	r := tc.nodes["n1"].ring()
	var keys [][]byte
	for i := 0; len(keys) < 30; i++ {
		primaries, _ := r.Preference(r.KeyPartition("b", aaeKey(i)), 3)
		if slices.ContainsFunc(primaries, func(p string) bool { return slices.Contains(sideA, p) }) &&
			slices.ContainsFunc(primaries, func(p string) bool { return slices.Contains(sideB, p) }) {
			keys = append(keys, aaeKey(i))
		}
	}
	ca, cb := tc.client("n1"), tc.client("n3")
	contexts := map[string][]byte{}
	for _, k := range keys {
		_, err := ca.Put(ctx, "b", k, []byte("before"), client.W(3))
		require.NoError(t, err)
		obj, err := ca.Get(ctx, "b", k, client.R(3))
		require.NoError(t, err)
		contexts[string(k)] = obj.Context
	}

	fn.Split(sideA, sideB)
	for _, name := range sideA {
		tc.waitDeadFrom(sideB, name)
	}
	for _, name := range sideB {
		tc.waitDeadFrom(sideA, name)
	}
	for _, k := range keys {
		_, err := ca.Put(ctx, "b", k, []byte("side-a"), client.W(2), client.Causal(contexts[string(k)]))
		require.NoError(t, err)
		_, err = cb.Put(ctx, "b", k, []byte("side-b"), client.W(2), client.Causal(contexts[string(k)]))
		require.NoError(t, err)
	}
	beforeF, beforeP := tc.aaeKeysRepaired()

	fn.Heal()
	tc.waitAlive(tc.names...)
	tc.waitTreesAgree(60 * time.Second)
	for _, k := range keys {
		p := r.KeyPartition("b", k)
		primaries, _ := r.Preference(p, 3)
		for _, name := range primaries {
			obj, found, err := tc.nodes[name].store.Get(p, "b", k)
			require.NoError(t, err)
			require.True(t, found)
			require.ElementsMatch(t, []string{"side-a", "side-b"}, liveValues(obj),
				"%s holds both sides' writes as siblings, and not what they replaced", name)
		}
	}
	fetched, pushed := tc.aaeKeysRepaired()
	require.Positive(t, fetched+pushed-beforeF-beforeP, "anti-entropy did the repair")
	for _, n := range tc.nodes {
		require.Zero(t, counterValue(t, n.metrics.readRepairs.WithLabelValues("ok")))
	}
}

// waitDeadFrom waits until every named observer sees node down.
func (tc *testCluster) waitDeadFrom(observers []string, node string) {
	tc.t.Helper()
	require.Eventually(tc.t, func() bool {
		for _, o := range observers {
			if tc.nodes[o].members.Alive(node) {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "%v still see %s alive", observers, node)
}

func TestAAEAnswersOnlyPeersAndOneExchangeAtATime(t *testing.T) {
	// The peers p1 and p2 below are made up: no member has their names.
	tc := startCluster(t, 1, func(c *Config) { aaeOnly(c); c.VerifyPeerAddress = false })
	n := tc.nodes["n1"]
	key := aaeKey(1)
	_, err := tc.client("n1").Put(t.Context(), "b", key, []byte("v"))
	require.NoError(t, err)
	p := n.ring().KeyPartition("b", key)

	var resp wire.AAEAnswerResp
	require.ErrorIs(t, rawClientCall(t, n.Addr(), wire.TypeAAEQuery, wire.AAEQueryReq{Partition: p, Kind: 1}, &resp),
		cairn.ErrInvalidArgument, "a client is not a peer")

	peer := func(name string) *transport.Pool {
		cfg := transport.DefaultConfig()
		cfg.Cluster, cfg.Node = n.cfg.Cluster, name
		pool := transport.NewPool(cfg)
		t.Cleanup(func() { require.NoError(t, pool.Close()) })
		return pool
	}
	p1, p2 := peer("p1"), peer("p2")
	call := func(pool *transport.Pool, typ wire.Type, req, resp any) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return pool.Call(ctx, n.Addr(), typ, req, resp)
	}
	require.NoError(t, call(p1, wire.TypeAAEQuery, wire.AAEQueryReq{Partition: p, Kind: 1}, &resp))
	require.Equal(t, antientropy.DefaultShape().Segments, resp.Segments)
	require.Equal(t, int64(1), resp.Keys)
	root, _ := treeRoot(t, n, p)
	require.Equal(t, root, resp.Root)

	for _, bad := range []wire.AAEQueryReq{
		{Partition: uint32(n.cfg.Partitions), Kind: 1},
		{Partition: p, Kind: 9},
		{Partition: p, Kind: 4, Segments: []int{5, 2}},
		{Partition: p, Kind: 3, Branches: []int{1 << 20}},
	} {
		require.ErrorIs(t, call(p1, wire.TypeAAEQuery, bad, &resp), cairn.ErrInvalidArgument, "%+v", bad)
	}
	wrong := aaeKey(2)
	for n.ring().KeyPartition("b", wrong) == p {
		wrong = append(wrong, 'x')
	}
	require.ErrorIs(t, call(p1, wire.TypeAAEFetch, wire.AAEFetchReq{Partition: p, Keys: []wire.AAEKeyRef{{Bucket: "b", Key: wrong}}}, nil),
		cairn.ErrInvalidArgument, "a key of another partition")
	require.ErrorIs(t, call(p1, wire.TypeAAEFetch, wire.AAEFetchReq{Partition: p}, nil), cairn.ErrInvalidArgument, "no keys")

	// p1 leases the partition with its first query past the root; p2 is
	// refused until p1 ends its exchange.
	require.NoError(t, call(p1, wire.TypeAAEQuery, wire.AAEQueryReq{Partition: p, Kind: 2}, &resp))
	require.Len(t, resp.Hashes, antientropy.DefaultShape().Branches)
	var fetched wire.AAEFetchResp
	require.ErrorIs(t, call(p2, wire.TypeAAEFetch, wire.AAEFetchReq{Partition: p, Keys: []wire.AAEKeyRef{{Bucket: "b", Key: key}}}, &fetched),
		cairn.ErrOverloaded)
	require.NoError(t, call(p1, wire.TypeAAEFetch, wire.AAEFetchReq{Partition: p, Keys: []wire.AAEKeyRef{{Bucket: "b", Key: key}}}, &fetched))
	require.Equal(t, 1, fetched.Answered)
	require.Len(t, fetched.Objects, 1)
	require.NoError(t, call(p1, wire.TypeAAEQuery, wire.AAEQueryReq{Partition: p, End: true}, &resp))
	require.NoError(t, call(p2, wire.TypeAAEFetch, wire.AAEFetchReq{Partition: p, Keys: []wire.AAEKeyRef{{Bucket: "b", Key: key}}}, &fetched))

	// A push syncs, never overwrites: a concurrent write becomes a sibling.
	other := mustUpdate(dvv.Object{}.Update(nil, "p2.actor", []byte("pushed"), false, 1))
	var pushed wire.AAEPushResp
	require.NoError(t, call(p2, wire.TypeAAEPush, wire.AAEPushReq{Partition: p, Objects: []wire.AAEObject{{Bucket: "b", Key: key, Object: other}}}, &pushed))
	require.Equal(t, 1, pushed.Applied)
	obj, _, err := n.store.Get(p, "b", key)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"v", "pushed"}, liveValues(obj))
	require.NoError(t, call(p2, wire.TypeAAEPush, wire.AAEPushReq{Partition: p, Objects: []wire.AAEObject{{Bucket: "b", Key: key, Object: other}}}, &pushed))
	require.Zero(t, pushed.Applied, "a push the copy already holds changes nothing")
	requireTreesMatchStore(t, n)
}

func TestAAEOff(t *testing.T) {
	// p1 below is made up: no member has its name.
	tc := startCluster(t, 1, func(c *Config) { c.AAE.Enabled = false; c.VerifyPeerAddress = false })
	n := tc.nodes["n1"]
	require.False(t, n.aae.Enabled())
	st, err := tc.client("n1").AAEStatus(t.Context(), true)
	require.NoError(t, err)
	require.False(t, st.Enabled)
	cfg := transport.DefaultConfig()
	cfg.Cluster, cfg.Node = n.cfg.Cluster, "p1"
	pool := transport.NewPool(cfg)
	defer func() { require.NoError(t, pool.Close()) }()
	err = pool.Call(t.Context(), n.Addr(), wire.TypeAAEQuery, wire.AAEQueryReq{Kind: 1}, &wire.AAEAnswerResp{})
	require.ErrorIs(t, err, cairn.ErrUnavailable)
}

func TestAAEStatusThroughTheClient(t *testing.T) {
	tc := startCluster(t, 3, aaeOnly)
	c := tc.client("n1")
	for i := range 20 {
		_, err := c.Put(t.Context(), "b", aaeKey(i), []byte("v"), client.W(3))
		require.NoError(t, err)
	}
	var st *client.AAEStatus
	require.Eventually(t, func() bool {
		s, err := c.AAEStatus(t.Context(), true)
		if err != nil || s.NeverExchanged != 0 {
			return false
		}
		st = s
		return true
	}, 30*time.Second, 20*time.Millisecond, "n1 exchanges every partition once at start")
	require.True(t, st.Enabled)
	require.Equal(t, "n1", st.Node)
	require.Equal(t, 64, st.Partitions, "three nodes, N=3: every node replicates every partition")
	require.GreaterOrEqual(t, st.OldestExchange, time.Duration(0))
	require.NotEmpty(t, st.TreeList)
	keys := int64(0)
	for _, tr := range st.TreeList {
		require.True(t, tr.Ready)
		require.True(t, tr.Replicated)
		require.Len(t, tr.Root, 16)
		keys += tr.Keys
	}
	require.Equal(t, int64(20), keys)
	require.Positive(t, st.BytesSent)
	require.Positive(t, st.BytesReceived)
}

// A member removed while dead leaves its partitions' new owners empty:
// each surviving node triages the peers of the partitions it gained and
// rebuilds them on the urgent budget, long before routine anti-entropy
// (one exchange every few seconds here) would have reached them.
func TestAAERebuildsARemovedMembersPartitionsFirst(t *testing.T) {
	tc := startCluster(t, 4, func(c *Config) {
		aaeOnly(c)
		c.AAE.ExchangesPerSecond = 0.2
		c.AAE.ExchangeBurst = 1
	})
	ctx := t.Context()
	c := tc.client("n1")
	const keys = 200
	for i := range keys {
		_, err := c.Put(ctx, "b", aaeKey(i), fmt.Appendf(nil, "v%d", i), client.W(client.All))
		require.NoError(t, err)
	}
	tc.stop("n4")
	tc.waitDead("n4")
	require.NoError(t, tc.nodes["n1"].members.Remove("n4"))
	survivors := []string{"n1", "n2", "n3"}
	require.Eventually(t, func() bool {
		for _, name := range survivors {
			if !slices.Equal(tc.nodes[name].ring().Members(), survivors) {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "the removal reached every survivor")

	// With three members left, each holds every partition.
	require.Eventually(t, func() bool {
		for _, name := range survivors {
			n := tc.nodes[name]
			for i := range keys {
				_, found, err := n.store.Get(n.ring().KeyPartition("b", aaeKey(i)), "b", aaeKey(i))
				if err != nil || !found {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "the survivors rebuilt the removed member's partitions")
	for _, name := range survivors {
		st := aaeStatus(t, tc.nodes[name])
		t.Logf("%s: %d exchanges, %d keys fetched, %d pushed", name, st.Exchanges, st.KeysFetched, st.KeysPushed)
	}
}
