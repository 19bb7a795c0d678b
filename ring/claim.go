package ring

import (
	"encoding/binary"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// The claim: which member owns which partition.
//
// Every member ranks every partition. Member m hashes each partition,
//
//	key(m, p) = xxhash64(le64(xxhash64(m)) || le32(p)) with its low 16 bits replaced by p
//
// and its rank for p is the position of key(m, p) among its Q keys in
// ascending order, 0..Q-1 (the keys are distinct, since Q <= 2^16). A pair
// (p, m) ranks above a pair (p', m') when rank(m, p) > rank(m', p'); on equal
// ranks, when key(m, p) > key(m', p'); then lower partition, then lower
// member name. Member m may own at most
//
//	capacity(m) = max(ceil(Q/S), floor(5Q/(4S) - u(m)))
//	u(m)        = (xxhash64(le64(xxhash64(m))) >> 32) / 2^32, in [0, 1)
//
// partitions. Walking the pairs from the top, a pair is taken when its
// partition is still unowned and its member is below its capacity.
//
// Why ranks rather than raw hashes: with raw hashes this would be
// rendezvous (highest-random-weight) hashing with a load cap. Under plain
// rendezvous a member's partition count is about Poisson(Q/S), so at
// Q/S = 16 the largest member owns about 1.6 x Q/S; once a cap enforces the
// 1.25 bound, many members sit at it, every join or leave pushes partitions
// off full members onto others, and movement reaches 2.2-2.4 x the ideal
// Q/(S+1). Ranks give every member the same spread of scores, one of each
// rank, so no member is lucky or unlucky across the board: the variance of
// the counts halves, fewer members reach the cap, and the worst movement in
// DESIGN's range (Q/S >= 16) drops to 1.8 x the ideal (2.0 in rare random
// member sets). Ranks depend on (m, Q) only, so a join or a leave never
// changes how the other members score, which is what keeps movement near
// the ideal, as in plain rendezvous.
//
// Why u(m): 1.25 x Q/S crosses an integer every few values of S, and with
// one cap for all, every member holding the old cap would shed a partition at
// that step. The member-specific fraction spreads those steps over S, so one
// join or leave changes the caps of about a third of the members at Q/S = 16.
// It halves the worst movement where Q/S is 8 to 16 (from 4.6-6.7 to 2.4-3.4
// x the ideal) and costs little above.
//
// Both sides rank pairs by the same order, so the outcome is the unique
// stable assignment: it depends on the inputs only, never on the order in
// which they are processed. claim computes it by deferred acceptance
// (partitions propose to members in their order, a full member keeps its
// best proposals) in O(Q*S) instead of sorting all Q*S pairs;
// claim_test.go checks the two agree. measure_test.go has the figures for
// this rule and the alternatives.

// capacities returns each member's cap: the 1.25 x Q/S balance bound less
// the member's fraction u(m), but never less than an even share, so that the
// members can always hold every partition. Integer arithmetic only: every
// node, whatever its CPU, must compute the same caps.
func capacities(partitions int, seeds []uint64) []int {
	q, s := int64(partitions), int64(len(seeds))
	even := (q + s - 1) / s
	caps := make([]int, len(seeds))
	for m, seed := range seeds {
		// floor(5q/(4s) - u) = floor((5q*2^32 - 4s*U) / (4s*2^32)), U = u*2^32.
		// q <= 2^16 and s <= 2^12 keep every term far below 2^63.
		num := 5*q<<32 - 4*s*int64(capacityFraction(seed))
		caps[m] = int(max(even, max(num, 0)/(4*s<<32)))
	}
	return caps
}

// capacityFraction is U = u(m) x 2^32 from the rule above.
func capacityFraction(seed uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	return uint32(xxhash.Sum64(b[:]) >> 32)
}

// scores holds what claim compares: each member's seed and its rank for
// every partition.
type scores struct {
	seeds []uint64
	ranks [][]uint16 // ranks[m][p]
}

func memberSeed(name string) uint64 { return xxhash.Sum64String(name) }

// partitionKey is key(m, p) from the rule above.
func partitionKey(seed uint64, p uint32) uint64 {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint32(b[8:], p)
	return xxhash.Sum64(b[:])&^0xffff | uint64(p)
}

// memberRanks returns rank(m, p) for every p. It sorts the keys by
// distributing them over 2Q buckets by their top bits and then running an
// insertion sort, which has almost nothing left to do: the keys are hash
// outputs, so the buckets hold half a key each on average. That makes the
// ranks O(Q) per member, where a comparison sort was most of the cost of New.
func memberRanks(seed uint64, s *rankScratch) []uint16 {
	partitions := len(s.keys)
	shift := 64 - uint(bits.TrailingZeros(uint(2*partitions)))
	clear(s.counts)
	for p := range s.unsorted {
		k := partitionKey(seed, uint32(p))
		s.unsorted[p] = k
		s.counts[k>>shift+1]++
	}
	for i := 1; i < len(s.counts); i++ {
		s.counts[i] += s.counts[i-1]
	}
	keys := s.keys
	for _, k := range s.unsorted {
		keys[s.counts[k>>shift]] = k
		s.counts[k>>shift]++
	}
	for i := 1; i < partitions; i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	ranks := make([]uint16, partitions)
	for r, k := range keys {
		ranks[k&0xffff] = uint16(r)
	}
	return ranks
}

// rankScratch is memberRanks' working space, reused across members.
type rankScratch struct {
	unsorted, keys []uint64 // Q each
	counts         []int    // 2Q+1: bucket boundaries
}

func newRankScratch(partitions int) *rankScratch {
	return &rankScratch{
		unsorted: make([]uint64, partitions),
		keys:     make([]uint64, partitions),
		counts:   make([]int, 2*partitions+1),
	}
}

func newScores(partitions int, sorted []string) *scores {
	s := &scores{seeds: make([]uint64, len(sorted)), ranks: make([][]uint16, len(sorted))}
	scratch := newRankScratch(partitions)
	for m, name := range sorted {
		s.seeds[m] = memberSeed(name)
		s.ranks[m] = memberRanks(s.seeds[m], scratch)
	}
	return s
}

// prefers reports whether partition p ranks member a above member b.
func (s *scores) prefers(p uint32, a, b int32) bool {
	if ra, rb := s.ranks[a][p], s.ranks[b][p]; ra != rb {
		return ra > rb
	}
	if ka, kb := partitionKey(s.seeds[a], p), partitionKey(s.seeds[b], p); ka != kb {
		return ka > kb
	}
	return a < b
}

// claim returns owners[p] as an index into the sorted member names, or all -1
// when there are no members.
func claim(partitions int, sorted []string) []int32 {
	owners := make([]int32, partitions)
	if len(sorted) == 0 {
		for p := range owners {
			owners[p] = -1
		}
		return owners
	}
	return claimScores(partitions, newScores(partitions, sorted))
}

// claimScores runs the claim on precomputed scores, one entry per member in
// name order.
func claimScores(partitions int, s *scores) []int32 {
	owners := make([]int32, partitions)
	caps := capacities(partitions, s.seeds)
	held := make([]holdings, len(s.seeds))
	for m := range held {
		held[m] = holdings{ranks: s.ranks[m], parts: make([]uint32, 0, caps[m])}
	}
	// proposed[p] is the member p proposed to last, or -1; p's next proposal
	// goes to the best member it ranks below that one.
	proposed := make([]int32, partitions)
	for p := range proposed {
		proposed[p] = -1
	}
	free := make([]uint32, partitions)
	for p := range free {
		free[p] = uint32(partitions - 1 - p)
	}
	for len(free) > 0 {
		p := free[len(free)-1]
		free = free[:len(free)-1]
		m := s.nextChoice(p, proposed[p])
		// Capacities sum to at least Q, so some member always has room.
		proposed[p] = m
		h := &held[m]
		switch {
		case len(h.parts) < caps[m]:
			h.push(p)
		case h.ranks[p] > h.ranks[h.parts[0]]:
			free = append(free, h.replaceWorst(p))
		default:
			free = append(free, p)
		}
	}
	for m := range held {
		for _, p := range held[m].parts {
			owners[p] = int32(m)
		}
	}
	return owners
}

// nextChoice is the member p ranks highest among those it ranks below
// after (all members when after is -1).
func (s *scores) nextChoice(p uint32, after int32) int32 {
	best := int32(-1)
	for m := range s.seeds {
		m := int32(m)
		if after >= 0 && !s.prefers(p, after, m) {
			continue
		}
		if best < 0 || s.prefers(p, m, best) {
			best = m
		}
	}
	return best
}

// holdings is one member's partitions during the claim, as a heap whose
// root is the one it ranks lowest: the one it gives up for a better
// proposal.
type holdings struct {
	ranks []uint16
	parts []uint32
}

func (h *holdings) lower(i, j int) bool { return h.ranks[h.parts[i]] < h.ranks[h.parts[j]] }

func (h *holdings) push(p uint32) {
	h.parts = append(h.parts, p)
	for i := len(h.parts) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.lower(i, parent) {
			return
		}
		h.parts[i], h.parts[parent] = h.parts[parent], h.parts[i]
		i = parent
	}
}

// replaceWorst swaps the lowest-ranked partition for p and returns it.
func (h *holdings) replaceWorst(p uint32) uint32 {
	out := h.parts[0]
	h.parts[0] = p
	n := len(h.parts)
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && h.lower(l, least) {
			least = l
		}
		if r < n && h.lower(r, least) {
			least = r
		}
		if least == i {
			return out
		}
		h.parts[i], h.parts[least] = h.parts[least], h.parts[i]
		i = least
	}
}
