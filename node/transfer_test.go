package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/faultnet"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

func smallRing(cfg *Config) {
	cfg.Partitions = 64
	cfg.Transfer.Interval = 50 * time.Millisecond
	cfg.Transfer.BatchKeys = 16 // several batches per partition
}

// join starts a node that joins the cluster as a new node: joining, with
// ownership transfer.
func (tc *testCluster) join(name string, tune func(*Config)) *Node {
	tc.t.Helper()
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.DataDir = tc.t.TempDir()
	cfg.Listen, cfg.Gossip, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.RejoinInterval = 300 * time.Millisecond
	cfg.tuneMemberlist = faultnet.FastTimings
	cfg.Logger = zaptest.NewLogger(tc.t).Named(name)
	cfg.Join = []string{tc.nodes[tc.names[0]].GossipAddr()}
	if tune != nil {
		tune(&cfg)
	}
	n, err := Start(tc.t.Context(), cfg)
	require.NoError(tc.t, err)
	cfg.Listen, cfg.Gossip = n.Addr(), n.GossipAddr()
	tc.cfgs[name], tc.nodes[name] = cfg, n
	tc.names = append(tc.names, name)
	return n
}

// A node that joins owns a partition only once the partition was streamed
// to it: when the ring in effect names it, it holds every key written
// before, and every key written during the change.
func TestJoinTransfersEveryPartitionBeforeOwning(t *testing.T) {
	tc := startCluster(t, 3, smallRing)
	c := tc.client("n1")
	ctx := t.Context()
	const before = 300
	key := func(i int) []byte { return []byte(fmt.Sprintf("k%04d", i)) }
	for i := range before {
		_, err := c.Put(ctx, "b", key(i), []byte("v"), client.W(client.All))
		require.NoError(t, err)
	}
	n4 := tc.join("n4", smallRing)
	// Writes during the change reach n4 as a pending replica or through
	// the stream.
	during := 0
	for ; during < 100; during++ {
		_, err := c.Put(ctx, "b", key(before+during), []byte("v"), client.W(client.All))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		for _, n := range tc.nodes {
			if len(n.ring().Members()) != 4 || n.members.Placement().Changing() {
				return false
			}
		}
		return true
	}, 60*time.Second, 20*time.Millisecond, "the join never completed")
	e, _ := n4.members.Member("n4")
	require.Equal(t, membership.StatusActive, e.Status)

	r := n4.ring()
	held := 0
	for i := range before + during {
		p := r.KeyPartition("b", key(i))
		primaries, _ := r.Preference(p, 3)
		if !slices.Contains(primaries, "n4") {
			continue
		}
		_, found, err := n4.store.Get(p, "b", key(i))
		require.NoError(t, err)
		require.True(t, found, "n4 owns %s but does not hold it", key(i))
		held++
	}
	require.Positive(t, held)

	// The old owners drop the copies moved away, and keep the rest.
	require.Eventually(t, func() bool {
		for _, name := range []string{"n1", "n2", "n3"} {
			for i := range before + during {
				p := r.KeyPartition("b", key(i))
				primaries, _ := r.Preference(p, 3)
				_, found, err := tc.nodes[name].store.Get(p, "b", key(i))
				require.NoError(t, err)
				if found != slices.Contains(primaries, name) {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "old owners hold what they no longer own, or lost what they own")
	var dropped float64
	for _, name := range []string{"n1", "n2", "n3"} {
		dropped += registryValue(t, tc.nodes[name], "cairn_transfer_partitions_dropped_total")
	}
	require.Positive(t, dropped)
	for i := range before + during {
		obj, err := c.Get(ctx, "b", key(i), client.R(client.All))
		require.NoError(t, err)
		require.True(t, obj.Found, "%s", key(i))
	}

	var sent int
	for _, name := range []string{"n1", "n2", "n3"} {
		for _, info := range tc.nodes[name].transfer.Local() {
			require.Equal(t, "n4", info.To)
			require.Equal(t, "done", info.State)
			sent++
		}
	}
	require.Positive(t, sent, "some partitions were streamed")
}

// A push or a done for a change the node is not a target of is refused,
// and writes nothing.
func TestTransferRefusesWhatIsNotForThisNode(t *testing.T) {
	tc := startCluster(t, 1, smallRing)
	n := tc.nodes["n1"]
	obj := mustUpdate(dvv.Object{}.Update(nil, "x.1", []byte("v"), false, 1))
	key := []byte("k")
	p := n.ring().KeyPartition("b", key)
	push := wire.TransferPushReq{Partition: p, Next: 42, Objects: []wire.AAEObject{{Bucket: "b", Key: key, Object: obj}}}
	_, err := n.transfer.ServePush(t.Context(), transport.Peer{Node: "n9"}, push)
	require.True(t, errors.Is(err, cairn.ErrInvalidArgument), "%v", err)
	_, err = n.transfer.ServePush(t.Context(), transport.Peer{}, push)
	require.True(t, errors.Is(err, cairn.ErrInvalidArgument), "%v", err)
	_, err = n.transfer.ServeDone(t.Context(), transport.Peer{Node: "n9"}, wire.TransferDoneReq{Partition: p, Next: 42})
	require.True(t, errors.Is(err, cairn.ErrInvalidArgument), "%v", err)
	_, found, err := n.store.Get(p, "b", key)
	require.NoError(t, err)
	require.False(t, found)
	e, _ := n.members.Member("n1")
	require.Empty(t, e.Have)
}

// A sender stopped in the middle of a partition resumes after the last
// batch the target acknowledged; a target stopped in the middle keeps
// what it received and still joins. Nothing is lost, and nothing comes
// back as a sibling.
func TestTransferResumesAfterSenderAndTargetRestart(t *testing.T) {
	slow := func(cfg *Config) {
		cfg.Partitions = 8
		cfg.Transfer.Interval = 50 * time.Millisecond
		cfg.Transfer.BatchKeys = 4
		cfg.Transfer.MaxConcurrent = 1
		cfg.Transfer.BytesPerSecond = 2048
	}
	tc := startCluster(t, 3, slow)
	c := tc.client("n1")
	ctx := t.Context()
	const keys = 400
	key := func(i int) []byte { return []byte(fmt.Sprintf("k%04d", i)) }
	for i := range keys {
		_, err := c.Put(ctx, "b", key(i), []byte("some value of a few bytes"), client.W(client.All))
		require.NoError(t, err)
	}
	n4 := tc.join("n4", slow)

	// Wait for a stream that has saved a cursor (more than one batch
	// acknowledged, more to come), and stop its sender.
	var sender string
	require.Eventually(t, func() bool {
		for _, name := range []string{"n1", "n2", "n3"} {
			for _, info := range tc.nodes[name].transfer.Local() {
				if info.State == "streaming" && info.Keys >= 8 && info.Keys < info.TotalKeys {
					sender = name
					return true
				}
			}
		}
		return false
	}, 60*time.Second, 10*time.Millisecond, "no stream got under way")
	tc.stop(sender)
	// And the target, in the middle of its streams from the others.
	tc.stop("n4")
	cfg := tc.cfgs[sender]
	cfg.Transfer.BytesPerSecond = 32 << 20
	tc.cfgs[sender] = cfg
	tc.restart("n4")
	tc.restart(sender)
	n4 = tc.nodes["n4"]
	e, _ := n4.members.Member("n4")
	require.Equal(t, membership.StatusJoining, e.Status, "a restarted joining node is still joining")

	require.Eventually(t, func() bool {
		for _, n := range tc.nodes {
			if len(n.ring().Members()) != 4 || n.members.Placement().Changing() {
				return false
			}
		}
		return true
	}, 120*time.Second, 20*time.Millisecond, "the join never completed")

	// The restarted sender sent less than its partitions hold: it resumed.
	var total int64
	for _, info := range tc.nodes[sender].transfer.Local() {
		total += info.TotalKeys
	}
	sent := registryValue(t, tc.nodes[sender], "cairn_transfer_keys_sent_total")
	require.Positive(t, total)
	require.Less(t, sent, float64(total), "the restarted sender started its partition over")

	r := n4.ring()
	for i := range keys {
		p := r.KeyPartition("b", key(i))
		primaries, _ := r.Preference(p, 3)
		if !slices.Contains(primaries, "n4") {
			continue
		}
		obj, found, err := n4.store.Get(p, "b", key(i))
		require.NoError(t, err)
		require.True(t, found, "n4 owns %s but does not hold it", key(i))
		require.Len(t, obj.Siblings, 1, "%s", key(i))
	}
}

// A live member that leaves streams its partitions to their next owners,
// keeps serving meanwhile, and is removed once every partition flipped;
// then its process may exit (Left). No key is lost.
func TestLeaveMovesEveryPartitionThenLeaves(t *testing.T) {
	tc := startCluster(t, 4, smallRing)
	c := tc.client("n1")
	ctx := t.Context()
	const keys = 300
	key := func(i int) []byte { return []byte(fmt.Sprintf("k%04d", i)) }
	for i := range keys {
		_, err := c.Put(ctx, "b", key(i), []byte("v"), client.W(client.All))
		require.NoError(t, err)
	}
	require.NoError(t, c.Leave(ctx, "n4"), "handed to n4 by n1")
	e, _ := tc.nodes["n4"].members.Member("n4")
	require.Equal(t, membership.StatusLeaving, e.Status)
	select {
	case <-tc.nodes["n4"].Left():
	case <-time.After(60 * time.Second):
		t.Fatal("n4 never left")
	}
	require.Eventually(t, func() bool {
		for _, name := range []string{"n1", "n2", "n3"} {
			n := tc.nodes[name]
			if !slices.Equal(n.ring().Members(), []string{"n1", "n2", "n3"}) || n.members.Placement().Changing() {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
	tc.stop("n4")
	r := tc.nodes["n1"].ring()
	for i := range keys {
		p := r.KeyPartition("b", key(i))
		primaries, _ := r.Preference(p, 3)
		for _, owner := range primaries {
			_, found, err := tc.nodes[owner].store.Get(p, "b", key(i))
			require.NoError(t, err)
			require.True(t, found, "%s owns %s but does not hold it", owner, key(i))
		}
	}
	e, _ = tc.nodes["n1"].members.Member("n4")
	require.Equal(t, membership.StatusRemoved, e.Status)

	err := c.Leave(ctx, "n9")
	require.ErrorIs(t, err, cairn.ErrNotFound)
	err = c.Leave(ctx, "n4")
	require.ErrorIs(t, err, cairn.ErrInvalidArgument, "a member that left cannot leave again")
}

func TestTheLastMemberCannotLeave(t *testing.T) {
	tc := startCluster(t, 1, smallRing)
	err := tc.client("n1").Leave(t.Context(), "n1")
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	e, _ := tc.nodes["n1"].members.Member("n1")
	require.Equal(t, membership.StatusActive, e.Status)
}

// A write during a change whose pending replica is down is kept as a hint
// by its coordinator, and handoff delivers it once the replica is back:
// the replica holds the write at the flip even though the stream had
// passed its key (here the streams never start, so only the hint can
// bring it).
func TestPendingReplicaDownGetsTheWriteAsAHint(t *testing.T) {
	noStreams := func(cfg *Config) {
		smallRing(cfg)
		cfg.Transfer.Settle = time.Hour
		cfg.Handoff.Interval = 100 * time.Millisecond
	}
	tc := startCluster(t, 3, noStreams)
	n4 := tc.join("n4", noStreams)
	require.Eventually(t, func() bool {
		for _, n := range tc.nodes {
			if !n.members.Placement().Changing() {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "the change never started")
	next := n4.members.Placement().Next()
	tc.stop("n4")
	tc.waitDead("n4")

	c := tc.client("n1")
	ctx := t.Context()
	key := func(i int) []byte { return fmt.Appendf(nil, "pending-%d", i) }
	var mine []int
	for i := range 200 {
		_, err := c.Put(ctx, "b", key(i), []byte("v"), client.W(2))
		require.NoError(t, err)
		p := next.KeyPartition("b", key(i))
		if prefs, _ := next.Preference(p, 3); slices.Contains(prefs, "n4") {
			mine = append(mine, i)
		}
	}
	require.NotEmpty(t, mine)
	require.Eventually(t, func() bool {
		hinted := 0.0
		for _, name := range []string{"n1", "n2", "n3"} {
			hinted += counterValue(t, tc.nodes[name].metrics.pendingWrites.WithLabelValues("hinted"))
		}
		return hinted >= float64(len(mine))
	}, 10*time.Second, 20*time.Millisecond, "the coordinators kept no hint for the pending replica")

	tc.restart("n4")
	n4 = tc.nodes["n4"]
	require.Eventually(t, func() bool {
		for _, i := range mine {
			p := next.KeyPartition("b", key(i))
			if _, found, err := n4.store.Get(p, "b", key(i)); err != nil || !found {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "handoff did not bring the pending replica its writes")
}
