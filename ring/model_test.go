package ring

import (
	"cmp"
	"slices"
)

// pairScore is how a test model scores pair (member m, partition p); pairs
// are ordered by primary, then secondary, both descending.
type pairScore func(m int, p uint32) (primary, secondary uint64)

// rankScore is the shipped rule's pair order (see claim.go).
func rankScore(partitions int, sorted []string) pairScore {
	seeds := make([]uint64, len(sorted))
	ranks := make([][]uint16, len(sorted))
	for m, name := range sorted {
		seeds[m] = memberSeed(name)
		keys := make([]uint64, partitions)
		for p := range keys {
			keys[p] = partitionKey(seeds[m], uint32(p))
		}
		slices.Sort(keys)
		ranks[m] = make([]uint16, partitions)
		for r, k := range keys {
			ranks[m][k&0xffff] = uint16(r)
		}
	}
	return func(m int, p uint32) (uint64, uint64) {
		return uint64(ranks[m][p]), partitionKey(seeds[m], p)
	}
}

// hashScore scores a pair by its hash alone: plain rendezvous hashing.
func hashScore(sorted []string) pairScore {
	seeds := make([]uint64, len(sorted))
	for m, name := range sorted {
		seeds[m] = memberSeed(name)
	}
	return func(m int, p uint32) (uint64, uint64) { return partitionKey(seeds[m], p), 0 }
}

// greedyClaim is the claim as its definition reads: sort all Q*S pairs and
// take each whose partition is unowned and whose member has room. It is the
// model claim is checked against, and, with other scores or capacities, the
// alternatives it is measured against.
func greedyClaim(partitions int, sorted []string, score pairScore, caps []int) []int32 {
	type pair struct {
		primary, secondary uint64
		p                  uint32
		m                  int32
	}
	pairs := make([]pair, 0, partitions*len(sorted))
	for m := range sorted {
		for p := range partitions {
			a, b := score(m, uint32(p))
			pairs = append(pairs, pair{a, b, uint32(p), int32(m)})
		}
	}
	slices.SortFunc(pairs, func(x, y pair) int {
		if c := cmp.Compare(y.primary, x.primary); c != 0 {
			return c
		}
		if c := cmp.Compare(y.secondary, x.secondary); c != 0 {
			return c
		}
		if c := cmp.Compare(x.p, y.p); c != 0 {
			return c
		}
		return cmp.Compare(x.m, y.m)
	})
	owners := make([]int32, partitions)
	for p := range owners {
		owners[p] = -1
	}
	load := make([]int, len(sorted))
	for _, x := range pairs {
		if owners[x.p] < 0 && load[x.m] < caps[x.m] {
			owners[x.p] = x.m
			load[x.m]++
		}
	}
	return owners
}

// rendezvous is plain highest-random-weight hashing: every partition goes to
// the member whose hash for it is highest, with no cap.
func rendezvous(partitions int, sorted []string) []int32 {
	score := hashScore(sorted)
	owners := make([]int32, partitions)
	for p := range owners {
		best, bestScore := int32(-1), uint64(0)
		for m := range sorted {
			if s, _ := score(m, uint32(p)); best < 0 || s > bestScore {
				best, bestScore = int32(m), s
			}
		}
		owners[p] = best
	}
	return owners
}

// memberCaps is the shipped capacity of each member, by index into sorted.
func memberCaps(partitions int, sorted []string) []int {
	seeds := make([]uint64, len(sorted))
	for m, name := range sorted {
		seeds[m] = memberSeed(name)
	}
	return capacities(partitions, seeds)
}

// uniformCaps gives every member the same cap.
func uniformCaps(members, limit int) []int {
	caps := make([]int, members)
	for m := range caps {
		caps[m] = limit
	}
	return caps
}

// boundCap is the most any member may own: max(ceil(Q/S), floor(1.25 Q/S)).
func boundCap(partitions, members int) int {
	return max((partitions+members-1)/members, 5*partitions/(4*members))
}
