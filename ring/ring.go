package ring

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// DefaultPartitions is Q for a cluster that does not choose one. It is fixed
// at cluster creation: changing it re-homes every key.
const DefaultPartitions = 1024

// MaxPartitions bounds Q so that a partition number fits the uint32 used on
// the wire and in storage keys with room to spare, and so that building a
// ring stays cheap.
const MaxPartitions = 1 << 16

// MaxMembers bounds the member set; a Dynamo-style cluster far larger than
// this wants a different design, not a bigger ring.
const MaxMembers = 1 << 12

// MaxPairs bounds Q x S. Building a ring ranks every (partition, member)
// pair, taking O(Q x S) time and 2 x Q x S bytes for the duration of New:
// about 1ms at Q=1024, S=64 and 100ms at Q=65536, S=64. The limit keeps a
// rebuild near a second and 32 MiB at worst. It allows 16384 members at the
// default Q (more than MaxMembers) but only 256 at Q=65536, so Q is best
// chosen no larger than a few hundred partitions per node at the cluster's
// largest expected size.
const MaxPairs = 1 << 24

// claimAlgorithm names the ownership rule (see claim.go). It is part of
// Version, so two builds that would place partitions differently for the same
// member set never report the same version to each other.
const claimAlgorithm = "cairn-ring/stable-claim-on-ranks/v1"

// Ring is the placement of Q partitions on a member set. It is immutable once
// built and safe for concurrent use.
type Ring struct {
	partitions int
	shift      uint // 64 - log2(Q): a key hash's top log2(Q) bits are its partition
	members    []string
	owners     []int32    // owners[p] indexes members; -1 only on a ring with no members
	owned      [][]uint32 // owned[i]: partitions of members[i], ascending
	owning     int        // how many members own at least one partition
	seats      map[string]string
	version    uint64
}

// New builds the ring for Q = partitions (a power of two, 1..MaxPartitions)
// and the member set. Members may be given in any order; duplicates, empty
// names and sets beyond MaxMembers or MaxPairs are errors. An empty member
// set is allowed and gives a ring with no owners, on which KeyPartition
// still works.
func New(partitions int, members []string) (*Ring, error) {
	return NewSeated(partitions, members, nil)
}

// NewSeated is New for a member set in which some members sit in another
// name's seat: seats[m] = s makes member m claim partitions as s would (its
// seed is s's), so a ring where m replaced s places every partition exactly
// where the ring with s did, with m in s's place, and a replacement moves
// nothing but s's partitions. Seats must be distinct from each other and
// from the names of the members without one. The version covers the seats.
func NewSeated(partitions int, members []string, seats map[string]string) (*Ring, error) {
	if partitions < 1 || partitions > MaxPartitions || partitions&(partitions-1) != 0 {
		return nil, fmt.Errorf("ring: partitions %d: must be a power of two between 1 and %d", partitions, MaxPartitions)
	}
	if len(members) > MaxMembers {
		return nil, fmt.Errorf("ring: %d members: at most %d are supported", len(members), MaxMembers)
	}
	if pairs := partitions * len(members); pairs > MaxPairs {
		return nil, fmt.Errorf("ring: %d partitions x %d members = %d pairs: at most %d are supported; use fewer partitions",
			partitions, len(members), pairs, MaxPairs)
	}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	for i, m := range sorted {
		if m == "" {
			return nil, fmt.Errorf("ring: empty member name")
		}
		if i > 0 && sorted[i-1] == m {
			return nil, fmt.Errorf("ring: duplicate member %q", m)
		}
	}
	claimed, seated := sorted, false
	if len(seats) > 0 {
		claimed = make([]string, len(sorted))
		taken := make(map[string]bool, len(sorted))
		for i, m := range sorted {
			claimed[i] = m
			if s := seats[m]; s != "" && s != m {
				claimed[i], seated = s, true
			}
			if taken[claimed[i]] {
				return nil, fmt.Errorf("ring: seat %q taken twice", claimed[i])
			}
			taken[claimed[i]] = true
		}
	}
	version := fingerprint(partitions, sorted)
	if seated {
		version = seatedFingerprint(version, sorted, claimed)
	}
	r := &Ring{
		partitions: partitions,
		shift:      uint(64 - bits.TrailingZeros(uint(partitions))),
		members:    sorted,
		owners:     claim(partitions, claimed),
		owned:      make([][]uint32, len(sorted)),
		version:    version,
	}
	if seated {
		r.seats = make(map[string]string)
		for i, m := range sorted {
			if claimed[i] != m {
				r.seats[m] = claimed[i]
			}
		}
	}
	for p, o := range r.owners {
		if o >= 0 {
			r.owned[o] = append(r.owned[o], uint32(p))
		}
	}
	for _, ps := range r.owned {
		if len(ps) > 0 {
			r.owning++
		}
	}
	return r, nil
}

// fingerprint hashes everything ownership depends on: the claim rule, Q and
// the sorted member names, each length-prefixed so that no two distinct
// inputs share an encoding.
func fingerprint(partitions int, sorted []string) uint64 {
	d := xxhash.New()
	buf := make([]byte, 0, 64)
	buf = appendString(buf, claimAlgorithm)
	buf = binary.AppendUvarint(buf, uint64(partitions))
	buf = binary.AppendUvarint(buf, uint64(len(sorted)))
	_, _ = d.Write(buf)
	for _, m := range sorted {
		buf = appendString(buf[:0], m)
		_, _ = d.Write(buf)
	}
	return d.Sum64()
}

// seatedFingerprint extends a member set's fingerprint with the seats of
// the members that sit in another's.
func seatedFingerprint(base uint64, sorted, seats []string) uint64 {
	d := xxhash.New()
	buf := binary.LittleEndian.AppendUint64(nil, base)
	buf = appendString(buf, "seats")
	_, _ = d.Write(buf)
	for i, m := range sorted {
		if seats[i] != m {
			buf = appendString(buf[:0], m)
			buf = appendString(buf, seats[i])
			_, _ = d.Write(buf)
		}
	}
	return d.Sum64()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Seat returns the seat member sits in (see NewSeated), or "" when it
// claims partitions under its own name or is not a member.
func (r *Ring) Seat(member string) string { return r.seats[member] }

// Partitions returns Q.
func (r *Ring) Partitions() int { return r.partitions }

// Members returns the member names, sorted. The slice is the caller's.
func (r *Ring) Members() []string { return slices.Clone(r.members) }

// Version fingerprints (claim rule, Q, member set): every node that builds a
// ring from the same inputs gets the same version, and any change to the
// inputs changes it (up to 64-bit hash collisions). Nodes compare versions to
// tell whether they agree on placement without shipping the ring.
func (r *Ring) Version() uint64 { return r.version }

// KeyPartition returns the partition of (bucket, key): the top log2(Q) bits of
// xxhash64(uvarint(len(bucket)) || bucket || key). The length prefix keeps
// ("ab", "c") and ("a", "bc") apart. It depends on Q only, never on the
// members, so a key's partition never changes for the life of a cluster.
func (r *Ring) KeyPartition(bucket string, key []byte) uint32 {
	// Shifting a uint64 by 64 yields 0, which is right for Q = 1.
	return uint32(keyHash(bucket, key) >> r.shift)
}

func keyHash(bucket string, key []byte) uint64 {
	var prefix [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(prefix[:], uint64(len(bucket)))
	var d xxhash.Digest
	d.Reset()
	_, _ = d.Write(prefix[:n])
	_, _ = d.WriteString(bucket)
	_, _ = d.Write(key)
	return d.Sum64()
}

// Owner returns the member that owns partition p, or "" when the ring has no
// members or p is not a partition of this ring: a partition number can come
// from the network, and a bad one must not crash a node.
func (r *Ring) Owner(p uint32) string {
	if int64(p) >= int64(r.partitions) || len(r.members) == 0 {
		return ""
	}
	return r.members[r.owners[p]]
}

// Owned returns the partitions member owns, ascending; nil for a name that is
// not a member or a member that owns nothing (some must when Q < S). The
// slice is the caller's.
func (r *Ring) Owned(member string) []uint32 {
	i, ok := slices.BinarySearch(r.members, member)
	if !ok {
		return nil
	}
	return slices.Clone(r.owned[i])
}
