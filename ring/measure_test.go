package ring

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

// placement computes owners[p] as indexes into the sorted member names; the
// measurement runs it for the shipped claim and for the alternatives it was
// chosen over.
type placement func(partitions int, sorted []string) []int32

// figures are worst cases over a sweep of member-set sizes, each relative to
// its ideal: Q/S for balance, Q/(S+1) for the movement between S and S+1
// members.
type figures struct {
	maxOwned, minOwned float64
	join, leave        float64
	maxS, joinS        int
	leaveS             int
}

func (f figures) String() string {
	return fmt.Sprintf("max/(Q/S)=%.3f (S=%d)  min/(Q/S)=%.3f  join/(Q/(S+1))=%.3f (S=%d)  leave/(Q/(S+1))=%.3f (S=%d)",
		f.maxOwned, f.maxS, f.minOwned, f.join, f.joinS, f.leave, f.leaveS)
}

// measure sweeps S over sizes. names(S+1) lists the members: the ring of the
// first S is the ring before a join, the ring of all S+1 after it. Every one
// of the S+1 members is then removed in turn to measure leaves.
func measure(place placement, partitions int, sizes []int, names func(n int) []string) figures {
	f := figures{minOwned: 1e9}
	for _, s := range sizes {
		all := names(s + 1)
		small, large := sortedCopy(all[:s]), sortedCopy(all)
		before, after := byName(place(partitions, small), small), byName(place(partitions, large), large)

		counts := map[string]int{}
		for _, o := range before {
			counts[o]++
		}
		share := float64(partitions) / float64(s)
		for _, m := range small {
			if r := float64(counts[m]) / share; r > f.maxOwned {
				f.maxOwned, f.maxS = r, s
			}
			f.minOwned = min(f.minOwned, float64(counts[m])/share)
		}

		ideal := float64(partitions) / float64(s+1)
		if r := float64(moved(before, after)) / ideal; r > f.join {
			f.join, f.joinS = r, s
		}
		for i := range large {
			rest := slices.Delete(slices.Clone(large), i, i+1)
			if r := float64(moved(after, byName(place(partitions, rest), rest))) / ideal; r > f.leave {
				f.leave, f.leaveS = r, s
			}
		}
	}
	return f
}

func byName(owners []int32, sorted []string) []string {
	out := make([]string, len(owners))
	for p, o := range owners {
		out[p] = sorted[o]
	}
	return out
}

func moved(a, b []string) int {
	n := 0
	for p := range a {
		if a[p] != b[p] {
			n++
		}
	}
	return n
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func sequentialNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("n%d", i+1)
	}
	return out
}

// randomNames are the same on every run, and names(n) is a prefix of
// names(n+1), so that a join adds exactly one member.
func randomNames(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cairn-%08x.db.internal:%d", rng.Uint32(), 7100+rng.IntN(100))
	}
	return out
}

func sizes(from, to int) []int {
	var out []int
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// cachedClaim is claim with each member's ranks computed once per
// measurement instead of once per ring: the sweep builds thousands of rings
// from the same few dozen names, and ranks are a function of (name, Q) only.
func cachedClaim() placement {
	type key struct {
		name       string
		partitions int
	}
	cache := map[key][]uint16{}
	return func(partitions int, sorted []string) []int32 {
		s := &scores{seeds: make([]uint64, len(sorted)), ranks: make([][]uint16, len(sorted))}
		for m, name := range sorted {
			s.seeds[m] = memberSeed(name)
			k := key{name, partitions}
			if cache[k] == nil {
				cache[k] = memberRanks(s.seeds[m], newRankScratch(partitions))
			}
			s.ranks[m] = cache[k]
		}
		return claimScores(partitions, s)
	}
}

var namings = []struct {
	name  string
	names func(int) []string
}{{"n1..nS", sequentialNames}, {"random", randomNames}}

// TestMeasure is the exhaustive check of DESIGN section 4's bounds at the
// default Q, and the record of what the alternatives would give
// (go test -v -run Measure ./ring prints the table).
func TestMeasure(t *testing.T) {
	const q = DefaultPartitions
	for _, nm := range namings {
		f := measure(cachedClaim(), q, sizes(3, 64), nm.names)
		t.Logf("%-44s %-7s %v", "shipped: ranks, caps floor(1.25 Q/S - u(m))", nm.name, f)
		if f.maxOwned > 1.25 || f.join > 2 || f.leave > 2 {
			t.Errorf("%s: outside DESIGN bounds (max owned <= 1.25 x Q/S, movement <= 2 x Q/(S+1)): %v", nm.name, f)
		}
		// Not a DESIGN bound, but a regression here would mean idle nodes.
		if f.minOwned < 0.5 {
			t.Errorf("%s: some member owns under half an even share: %v", nm.name, f)
		}
		// The race detector slows this pure arithmetic tenfold and can find
		// nothing in it; the comparison is a record, not a check.
		if !raceEnabled {
			t.Logf("%-44s %-7s %v", "pure HRW (rendezvous)", nm.name, measure(rendezvous, q, sizes(3, 64), nm.names))
		}
	}
	if !testing.Verbose() || raceEnabled {
		t.Log("the other alternatives are measured only by go test -v without -race")
		return
	}
	alternatives := []struct {
		name  string
		place placement
	}{
		{"ranks, no cap", func(q int, sorted []string) []int32 {
			return greedyClaim(q, sorted, rankScore(q, sorted), uniformCaps(len(sorted), q))
		}},
		{"ranks, one cap floor(1.25 Q/S) for all", func(q int, sorted []string) []int32 {
			return greedyClaim(q, sorted, rankScore(q, sorted), uniformCaps(len(sorted), boundCap(q, len(sorted))))
		}},
		{"hashes, shipped caps", func(q int, sorted []string) []int32 {
			return greedyClaim(q, sorted, hashScore(sorted), memberCaps(q, sorted))
		}},
		{"hashes, one cap floor(1.25 Q/S) for all", func(q int, sorted []string) []int32 {
			return greedyClaim(q, sorted, hashScore(sorted), uniformCaps(len(sorted), boundCap(q, len(sorted))))
		}},
		{"hashes, cap ceil(Q/S) (the brief's candidate)", func(q int, sorted []string) []int32 {
			return greedyClaim(q, sorted, hashScore(sorted), uniformCaps(len(sorted), (q+len(sorted)-1)/len(sorted)))
		}},
	}
	for _, alt := range alternatives {
		for _, nm := range namings {
			t.Logf("%-44s %-7s %v", alt.name, nm.name, measure(alt.place, q, sizes(3, 64), nm.names))
		}
	}
}

// TestMeasureOtherShapes records the same figures away from the default:
// one and two members, and other Q. Where Q/S is small the 1.25 bound
// cannot hold (Q/S = 4 allows 5; Q/S = 2 would allow 2.5 and the cap is 3),
// so only the cap is asserted.
func TestMeasureOtherShapes(t *testing.T) {
	for _, s := range []int{1, 2} {
		r := mustNew(t, DefaultPartitions, sequentialNames(s))
		var counts []int
		for _, m := range r.Members() {
			counts = append(counts, len(r.Owned(m)))
		}
		t.Logf("Q=%d S=%d: owned %v", DefaultPartitions, s, counts)
	}
	if testing.Verbose() && !raceEnabled {
		for _, nm := range namings {
			t.Logf("Q=1024  S=65..128 %-7s %v", nm.name, measure(cachedClaim(), DefaultPartitions, sizes(65, 128), nm.names))
		}
	}
	shapes := []int{64, 256}
	if !raceEnabled {
		shapes = append(shapes, 4096)
	}
	for _, q := range shapes {
		f := measure(cachedClaim(), q, sizes(3, 64), sequentialNames)
		t.Logf("Q=%-5d S=3..64 n1..nS %v", q, f)
		for s := 1; s <= 64; s++ {
			r := mustNew(t, q, sequentialNames(s))
			for _, m := range r.Members() {
				if n := len(r.Owned(m)); n > boundCap(q, s) {
					t.Errorf("Q=%d S=%d: %s owns %d, cap %d", q, s, m, n, boundCap(q, s))
				}
			}
		}
	}
}

// TestMeasureRandomSets estimates how rare the worst movement is: random
// names, S uniform in 3..64, one join and one leave each. It runs a few
// hundred trials by default; CAIRN_RING_TRIALS=25000 gives the figures
// quoted in property_test.go (about 2 minutes).
func TestMeasureRandomSets(t *testing.T) {
	trials := 300
	if raceEnabled {
		trials = 20
	}
	if v := os.Getenv("CAIRN_RING_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("CAIRN_RING_TRIALS=%q: %v", v, err)
		}
		trials = n
	}
	const q = DefaultPartitions
	rng := rand.New(rand.NewPCG(7, 9))
	var worst float64
	above := map[string]int{}
	for range trials {
		s := 3 + rng.IntN(62)
		names := make([]string, s+1)
		for i := range names {
			names[i] = fmt.Sprintf("%016x", rng.Uint64())[:4+rng.IntN(12)]
		}
		small, large := sortedCopy(names[:s]), sortedCopy(names)
		if len(slices.Compact(slices.Clone(large))) != len(large) {
			continue // a repeated name; vanishingly rare
		}
		a, b := byName(claim(q, small), small), byName(claim(q, large), large)
		i := rng.IntN(s + 1)
		rest := slices.Delete(slices.Clone(large), i, i+1)
		c := byName(claim(q, rest), rest)
		ideal := float64(q) / float64(s+1)
		for _, r := range []float64{float64(moved(a, b)) / ideal, float64(moved(b, c)) / ideal} {
			worst = max(worst, r)
			for _, limit := range []float64{1.7, 1.8, 1.9, 2.0} {
				if r > limit {
					above[fmt.Sprintf(">%.1f", limit)]++
				}
			}
		}
	}
	t.Logf("%d random sets, a join and a leave each: worst movement %.3f x Q/(S+1); changes above: %v", trials, worst, above)
}

// TestMeasureSpread records how the clockwise walk spreads replicas: how
// often neighbouring partitions share an owner (which lengthens the walk),
// the longest walk to find N=3 distinct members, and how evenly the N=3
// replica duty (primaries of every partition) falls on the members.
func TestMeasureSpread(t *testing.T) {
	const q, n = DefaultPartitions, 3
	for _, nm := range namings {
		var worstAdjacent, worstDuty, bestDuty float64 = 0, 0, 1e9
		worstWalk := 0
		for s := n; s <= 64; s++ {
			r := mustNew(t, q, nm.names(s))
			same := 0
			duty := map[string]int{}
			for p := range q {
				if r.Owner(uint32(p)) == r.Owner(uint32((p+1)%q)) {
					same++
				}
				primaries, _ := r.Preference(uint32(p), n)
				for _, m := range primaries {
					duty[m]++
				}
				walk := 0
				for seen := map[string]bool{}; len(seen) < n; walk++ {
					seen[r.Owner(uint32((p+walk)%q))] = true
				}
				worstWalk = max(worstWalk, walk)
			}
			// With S = 3 every member is a primary of every partition.
			if s > n {
				worstAdjacent = max(worstAdjacent, float64(same)/q*float64(s))
			}
			share := float64(n*q) / float64(s)
			for _, m := range r.Members() {
				worstDuty = max(worstDuty, float64(duty[m])/share)
				bestDuty = min(bestDuty, float64(duty[m])/share)
			}
		}
		t.Logf("%-7s neighbours with one owner: worst %.2f x 1/S; longest walk for N=3: %d partitions; replica duty per member: %.3f..%.3f x 3Q/S",
			nm.name, worstAdjacent, worstWalk, bestDuty, worstDuty)
	}
}
