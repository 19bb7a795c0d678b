package ring

import (
	"cmp"
	"slices"
)

// Preference returns the replicas of partition p for replication factor n.
//
// It walks the ring clockwise from p (p, p+1, ..., wrapping at Q), collecting
// owners and skipping members already collected. The first min(n, S) distinct
// members are the primaries; every other member follows, in walk order, as a
// fallback, so primaries and fallbacks together name each member exactly once.
// Members that own no partition (some never do when Q < S) come after the
// walk, highest key(m, p) first (see claim.go), so that the work they pick
// up spreads over them.
//
// A p outside the ring, or an empty ring, gives no replicas.
func (r *Ring) Preference(p uint32, n int) (primaries, fallbacks []string) {
	if int64(p) >= int64(r.partitions) || len(r.members) == 0 {
		return nil, nil
	}
	n = max(0, min(n, len(r.members)))
	walk := make([]string, 0, len(r.members))
	// A stack bitset covers clusters of up to 256 members without an
	// allocation on this per-request path.
	var small [4]uint64
	seen := small[:]
	if words := (len(r.members) + 63) / 64; words > len(small) {
		seen = make([]uint64, words)
	}
	for i := 0; i < r.partitions && len(walk) < r.owning; i++ {
		o := r.owners[(int(p)+i)&(r.partitions-1)]
		if seen[o/64]&(1<<(o%64)) == 0 {
			seen[o/64] |= 1 << (o % 64)
			walk = append(walk, r.members[o])
		}
	}
	if len(walk) < len(r.members) {
		walk = r.appendUnowned(walk, seen, p)
	}
	return walk[:n:n], walk[n:]
}

// appendUnowned adds the members that own nothing, highest key for p first.
func (r *Ring) appendUnowned(walk []string, seen []uint64, p uint32) []string {
	type ranked struct {
		key    uint64
		member int
	}
	var rest []ranked
	for m, name := range r.members {
		if seen[m/64]&(1<<(m%64)) == 0 {
			rest = append(rest, ranked{partitionKey(memberSeed(name), p), m})
		}
	}
	slices.SortFunc(rest, func(a, b ranked) int {
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		return cmp.Compare(a.member, b.member)
	})
	for _, x := range rest {
		walk = append(walk, r.members[x.member])
	}
	return walk
}
