package antientropy

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The property tests check the package against dumb models: a map of key
// to version per replica, and differences computed by comparing maps
// directly. Keys are drawn from a small space, so that replicas share keys,
// overwrite them, and crowd several into one segment.

var buckets = []string{"", "a", "ab", "users"}

type key struct {
	bucket string
	key    []byte
}

func drawKey(t *rapid.T, label string) key {
	return key{
		bucket: rapid.SampledFrom(buckets).Draw(t, label+"-bucket"),
		key:    rapid.SliceOfN(rapid.ByteRange('a', 'd'), 0, 3).Draw(t, label+"-key"),
	}
}

// drawShape favours small shapes, where segments hold several keys and
// some stay empty.
func drawShape(t *rapid.T) Shape {
	segments := 1 << rapid.IntRange(0, 6).Draw(t, "log2-segments")
	branches := 1 << rapid.IntRange(0, rapid.IntRange(0, 6).Draw(t, "log2-branches-max")%(1+log2(segments))).Draw(t, "log2-branches")
	return Shape{Segments: segments, Branches: branches}
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n, l = n/2, l+1
	}
	return l
}

// drawVersion is a small version so that replicas often agree by chance,
// Absent now and then (a removal).
func drawVersion(t *rapid.T, label string) uint64 {
	return rapid.Uint64Range(0, 4).Draw(t, label)
}

// drawHistory applies a random history of puts, overwrites and removals to
// a replica and returns its ops.
type op struct {
	k        key
	from, to uint64
}

func drawHistory(t *rapid.T, r *replica, label string) []op {
	n := rapid.IntRange(0, 60).Draw(t, label+"-ops")
	ops := make([]op, 0, n)
	for i := range n {
		k := drawKey(t, fmt.Sprintf("%s-%d", label, i))
		o := op{k: k, from: r.version(k.bucket, k.key), to: drawVersion(t, fmt.Sprintf("%s-%d-v", label, i))}
		r.put(k.bucket, k.key, o.to)
		ops = append(ops, o)
	}
	return ops
}

// TestPropertyIncrementalEqualsRebuilt: whatever the history, the tree kept
// write by write equals a tree built from the final store in any order,
// and equals one rebuilt across a cut: the keys of a snapshot taken
// mid-history plus the writes after it, all interleaved at random (the
// Builder's rebuild protocol).
func TestPropertyIncrementalEqualsRebuilt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shape := drawShape(t)
		r := newReplica(t, shape)
		ops := drawHistory(t, r, "h")

		b, err := NewBuilder(shape)
		require.NoError(t, err)
		for _, kv := range rapid.Permutation(r.all()).Draw(t, "order") {
			b.Add(kv.Bucket, kv.Key, kv.Version)
		}
		require.True(t, b.Tree().Equal(r.tree), "built from scratch")
		require.Equal(t, r.tree.Keys(), b.Keys())
		require.Equal(t, int64(len(r.objs)), r.tree.Keys())

		cut := rapid.IntRange(0, len(ops)).Draw(t, "cut")
		snap := newReplica(t, shape)
		for _, o := range ops[:cut] {
			snap.put(o.k.bucket, o.k.key, o.to)
		}
		type item struct {
			add bool
			kv  KeyVersion
			op  op
		}
		var items []item
		for _, kv := range snap.all() {
			items = append(items, item{add: true, kv: kv})
		}
		for _, o := range ops[cut:] {
			items = append(items, item{op: o})
		}
		rb, err := NewBuilder(shape)
		require.NoError(t, err)
		for _, it := range rapid.Permutation(items).Draw(t, "interleaving") {
			if it.add {
				rb.Add(it.kv.Bucket, it.kv.Key, it.kv.Version)
			} else {
				rb.Update(it.op.k.bucket, it.op.k.key, it.op.from, it.op.to)
			}
		}
		require.True(t, rb.Tree().Equal(r.tree), "rebuilt across a cut at %d of %d", cut, len(ops))
		require.Equal(t, r.tree.Keys(), rb.Keys())
	})
}

// drawPair draws two replicas of one partition: a common history, then a
// history of its own for each.
func drawPair(t *rapid.T) (a, b *replica) {
	shape := drawShape(t)
	a, b = newReplica(t, shape), newReplica(t, shape)
	for _, o := range drawHistory(t, a, "common") {
		b.put(o.k.bucket, o.k.key, o.to)
	}
	drawHistory(t, a, "a")
	drawHistory(t, b, "b")
	return a, b
}

// TestPropertyDiff: the segments whose hashes differ are exactly those
// whose key/version sets differ, and the branches that differ are exactly
// the branches above them.
func TestPropertyDiff(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := drawPair(t)
		diff, err := a.tree.Diff(b.tree)
		require.NoError(t, err)
		want := modelDiff(a, b)
		require.Equal(t, want, diff)

		var wantBranches []int
		for _, s := range want {
			wantBranches = append(wantBranches, a.tree.Shape().BranchOf(s))
		}
		wantBranches = slices.Compact(wantBranches)
		require.Equal(t, wantBranches, DiffBranches(a.tree.Branches(), b.tree.Branches()))
		require.Equal(t, len(want) == 0, a.tree.Root() == b.tree.Root())
		require.Equal(t, len(want) == 0, a.tree.Equal(b.tree))
	})
}

// TestPropertyExchange: an exchange between two random replicas hands out
// exactly the keys whose versions differ or that one side lacks, each once,
// in the right direction; syncing them makes the replicas equal, and
// exchanges cut short by a key budget converge too.
func TestPropertyExchange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := drawPair(t)
		cfg := ExchangeConfig{SegmentsPerRound: rapid.IntRange(1, 5).Draw(t, "per-round"), MaxKeys: 1 << 20}
		rounds, x := exchange(t, a, b, cfg)
		require.NoError(t, x.Err())
		got := repairs(rounds)

		var want Repair
		for k, kv := range a.objs {
			other, ok := b.objs[k]
			switch {
			case !ok:
				want.MissingThere = append(want.MissingThere, kv)
			case other.Version != kv.Version:
				want.Differ = append(want.Differ, other)
			}
		}
		for k, kv := range b.objs {
			if _, ok := a.objs[k]; !ok {
				want.MissingHere = append(want.MissingHere, kv)
			}
		}
		for _, l := range []*[]KeyVersion{&got.MissingHere, &got.MissingThere, &got.Differ, &want.MissingHere, &want.MissingThere, &want.Differ} {
			SortKeys(*l)
		}
		require.Equal(t, want, got)
		st := x.Stats()
		require.Equal(t, []int{len(want.MissingHere), len(want.MissingThere), len(want.Differ)},
			[]int{st.KeysMissingHere, st.KeysMissingThere, st.KeysDiffering})
		require.Equal(t, len(modelDiff(a, b)), st.SegmentsDiffering)
		require.False(t, st.Truncated)

		// Sync, with a small key budget now and then: each exchange makes
		// progress, and they converge.
		if rapid.Bool().Draw(t, "small-budget") {
			cfg.MaxKeys = rapid.IntRange(1, 3).Draw(t, "max-keys")
		}
		merged := uint64(1000)
		for i := 0; ; i++ {
			rounds, x := exchange(t, a, b, cfg)
			require.NoError(t, x.Err())
			r := repairs(rounds)
			if r.Len() == 0 {
				require.True(t, a.tree.Equal(b.tree), "no repairs, yet the trees differ")
				require.Equal(t, a.all(), b.all())
				break
			}
			require.LessOrEqual(t, i, want.Len(), "exchanges do not converge")
			for _, kv := range r.MissingHere {
				a.put(kv.Bucket, kv.Key, kv.Version)
			}
			for _, kv := range r.MissingThere {
				b.put(kv.Bucket, kv.Key, kv.Version)
			}
			for _, kv := range r.Differ {
				merged++
				a.put(kv.Bucket, kv.Key, merged)
				b.put(kv.Bucket, kv.Key, merged)
			}
		}
	})
}

// TestPropertyMarshal: saving and loading gives back the tree, any single
// flipped bit or lost byte is an error, and arbitrary bytes never panic.
func TestPropertyMarshal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shape := drawShape(t)
		r := newReplica(t, shape)
		drawHistory(t, r, "h")
		raw, err := r.tree.MarshalBinary()
		require.NoError(t, err)
		var back Tree
		require.NoError(t, back.UnmarshalBinary(raw))
		require.True(t, back.Equal(r.tree))
		require.Equal(t, r.tree.Keys(), back.Keys())

		bit := rapid.IntRange(0, 8*len(raw)-1).Draw(t, "bit")
		flipped := slices.Clone(raw)
		flipped[bit/8] ^= 1 << (bit % 8)
		require.ErrorIs(t, back.UnmarshalBinary(flipped), ErrCorrupt, "bit %d flipped", bit)
		cut := rapid.IntRange(0, len(raw)-1).Draw(t, "cut")
		require.ErrorIs(t, back.UnmarshalBinary(raw[:cut]), ErrCorrupt)

		junk := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "junk")
		_ = back.UnmarshalBinary(junk)
	})
}

// TestPropertyScheduler drives a scheduler with random events and checks
// its promises: never more than MaxConcurrent routine and
// UrgentMaxConcurrent urgent exchanges running, never two of one
// partition, only assigned pairs started, starts within the two exchange
// budgets, and Wake consistent with Next.
func TestPropertyScheduler(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := SchedulerConfig{
			MaxConcurrent:      rapid.IntRange(1, 3).Draw(t, "max"),
			MinInterval:        rapid.Int64Range(0, 20).Draw(t, "interval") * second,
			RetryAfter:         rapid.Int64Range(0, 10).Draw(t, "retry") * second,
			ExchangesPerSecond: float64(rapid.IntRange(1, 4).Draw(t, "rate")),
			ExchangeBurst:      rapid.IntRange(1, 4).Draw(t, "burst"),
			RepairsPerSecond:   float64(rapid.IntRange(1, 10).Draw(t, "repair-rate")),
			RepairBurst:        rapid.IntRange(1, 10).Draw(t, "repair-burst"),
			BusyRetryAfter:     rapid.Int64Range(0, 3).Draw(t, "busy-retry") * second,

			UrgentMaxConcurrent:      rapid.IntRange(1, 3).Draw(t, "urgent-max"),
			UrgentExchangesPerSecond: float64(rapid.IntRange(1, 8).Draw(t, "urgent-rate")),
			UrgentExchangeBurst:      rapid.IntRange(1, 8).Draw(t, "urgent-burst"),
			UrgentRepairsPerSecond:   float64(rapid.IntRange(1, 20).Draw(t, "urgent-repair-rate")),
			UrgentRepairBurst:        rapid.IntRange(1, 20).Draw(t, "urgent-repair-burst"),
		}
		s, err := NewScheduler(cfg, uint32(rapid.IntRange(0, 6).Draw(t, "origin")))
		require.NoError(t, err)
		peers := []string{"n2", "n3", "n4"}
		assigned := map[Pair]bool{}
		assign := func() {
			var as []Assignment
			clear(assigned)
			for p := range uint32(rapid.IntRange(0, 5).Draw(t, "partitions")) {
				ps := rapid.SliceOfDistinct(rapid.SampledFrom(peers), rapid.ID).Draw(t, "peers")
				as = append(as, Assignment{Partition: p, Peers: ps})
				for _, peer := range ps {
					assigned[Pair{p, peer}] = true
				}
			}
			require.NoError(t, s.SetPartitions(as))
		}
		assign()

		var now int64
		started := 0
		for i := range rapid.IntRange(1, 80).Draw(t, "events") {
			now += rapid.Int64Range(0, 3*second).Draw(t, fmt.Sprintf("dt%d", i))
			running := s.Running()
			switch rapid.IntRange(0, 9).Draw(t, fmt.Sprintf("event%d", i)) {
			case 0:
				assign()
			case 1:
				s.Touch(rapid.SampledFrom(peers).Draw(t, fmt.Sprintf("touch%d", i)))
			case 2, 3:
				if len(running) > 0 {
					p := rapid.SampledFrom(running).Draw(t, fmt.Sprintf("finish%d", i))
					s.Finish(p, now, ExchangeStats{KeysDiffering: rapid.IntRange(0, 5).Draw(t, fmt.Sprintf("keys%d", i))})
				}
			case 4:
				if len(running) > 0 {
					p := rapid.SampledFrom(running).Draw(t, fmt.Sprintf("fail%d", i))
					if rapid.Bool().Draw(t, fmt.Sprintf("busy%d", i)) {
						s.Busy(p, now)
					} else {
						s.Fail(p, now)
					}
				}
			default:
				at, ok := s.Wake(now)
				p, started1 := s.Next(now)
				if started1 {
					started++
					require.True(t, assigned[p], "started %v, which is not assigned", p)
					require.True(t, ok && at <= now, "Next started %v at %d, but Wake said %d, %t", p, now, at, ok)
				} else if ok {
					require.Greater(t, at, now, "Wake said now, yet Next started nothing")
					// Nothing else happens until the wake time: Next
					// must then start something.
					now = at
					p, started2 := s.Next(now)
					require.True(t, started2, "nothing started at the wake time %d", at)
					require.True(t, assigned[p])
					started++
				}
			}
			running = s.Running()
			st := s.Stats()
			require.LessOrEqual(t, st.RunningUrgent, cfg.UrgentMaxConcurrent)
			require.LessOrEqual(t, len(running)-st.RunningUrgent, cfg.MaxConcurrent)
			parts := map[uint32]bool{}
			for _, p := range running {
				require.False(t, parts[p.Partition], "two exchanges of partition %d", p.Partition)
				parts[p.Partition] = true
			}
			budget := float64(cfg.ExchangeBurst+cfg.UrgentExchangeBurst) +
				(cfg.ExchangesPerSecond+cfg.UrgentExchangesPerSecond)*float64(now)/1e9
			require.LessOrEqual(t, float64(started), budget+1e-6, "started more than the exchange budget")
			require.Equal(t, uint64(started), s.Stats().Started)
		}
	})
}

// TestPropertyCompareKeys: the canonical order is a total order that agrees
// with the store's byte order of encoded keys.
func TestPropertyCompareKeys(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) KeyVersion {
			n := rapid.SampledFrom([]int{0, 1, 2, 127, 128, 129, 300}).Draw(t, "bucket-len")
			b := rapid.SliceOfN(rapid.ByteRange('a', 'b'), n, n).Draw(t, "bucket")
			return KeyVersion{Bucket: string(b), Key: rapid.SliceOfN(rapid.ByteRange(0, 2), 0, 3).Draw(t, "key")}
		})
		x, y := gen.Draw(t, "x"), gen.Draw(t, "y")
		require.Equal(t, cmpSign(encodeKey(x.Bucket, x.Key), encodeKey(y.Bucket, y.Key)), CompareKeys(x, y))
	})
}

// rapid's T is not a testing.TB; make sure the helpers stay usable by both.
var _ fataler = (*rapid.T)(nil)
var _ fataler = (testing.TB)(nil)
