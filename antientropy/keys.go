package antientropy

import (
	"fmt"
	"slices"

	"github.com/cairnkv/cairn"
)

// KeyVersion is one key of a segment's key list and the Version of the
// object a replica holds under it.
type KeyVersion struct {
	Bucket  string `msgpack:"b"`
	Key     []byte `msgpack:"k"`
	Version uint64 `msgpack:"v"`
}

func (kv KeyVersion) String() string {
	return fmt.Sprintf("%s/%s@%016x", kv.Bucket, kv.Key, kv.Version)
}

// CompareKeys orders key versions canonically by (bucket, key), ignoring the
// version: by the bytes of uvarint(len(bucket)) bucket key. That is the
// order of a partition's objects in the store, so a partition scan yields
// sorted key lists without sorting.
func CompareKeys(a, b KeyVersion) int { return compareKeys(a.Bucket, a.Key, b.Bucket, b.Key) }

// SortKeys sorts a key list canonically.
func SortKeys(kvs []KeyVersion) { slices.SortFunc(kvs, CompareKeys) }

// DiffKeys compares two canonically sorted key lists without duplicates,
// local (this replica's) and remote (the peer's). missingHere are the
// peer's entries for keys only it holds, missingThere this replica's for
// keys only it holds, and differ the peer's entries for keys both hold at
// different versions. Each comes out sorted. An entry at version Absent
// counts as not held.
func DiffKeys(local, remote []KeyVersion) (missingHere, missingThere, differ []KeyVersion) {
	i, j := 0, 0
	for i < len(local) || j < len(remote) {
		var c int
		switch {
		case i == len(local):
			c = 1
		case j == len(remote):
			c = -1
		default:
			c = CompareKeys(local[i], remote[j])
		}
		switch {
		case c < 0:
			if local[i].Version != Absent {
				missingThere = append(missingThere, local[i])
			}
			i++
		case c > 0:
			if remote[j].Version != Absent {
				missingHere = append(missingHere, remote[j])
			}
			j++
		default:
			switch l, r := local[i].Version, remote[j].Version; {
			case l == r:
			case l == Absent:
				missingHere = append(missingHere, remote[j])
			case r == Absent:
				missingThere = append(missingThere, local[i])
			default:
				differ = append(differ, remote[j])
			}
			i++
			j++
		}
	}
	return missingHere, missingThere, differ
}

// SegmentSet is a set of a shape's segments, for filtering a partition scan
// down to the keys an exchange asked for.
type SegmentSet struct {
	shape Shape
	bits  []uint64
}

// NewSegmentSet returns the set of the given segments. A segment outside
// the shape is an error wrapping cairn.ErrInvalidArgument.
func NewSegmentSet(shape Shape, segments []int) (SegmentSet, error) {
	if err := shape.Validate(); err != nil {
		return SegmentSet{}, err
	}
	s := SegmentSet{shape: shape, bits: make([]uint64, (shape.Segments+63)/64)}
	for _, i := range segments {
		if i < 0 || i >= shape.Segments {
			return SegmentSet{}, cairn.InvalidArgument("antientropy: segment %d out of range [0, %d)", i, shape.Segments)
		}
		s.bits[i/64] |= 1 << (i % 64)
	}
	return s, nil
}

// HasSegment reports whether segment i is in the set.
func (s SegmentSet) HasSegment(i int) bool {
	return i >= 0 && i < s.shape.Segments && s.bits[i/64]&(1<<(i%64)) != 0
}

// Has reports whether the segment of (bucket, key) is in the set.
func (s SegmentSet) Has(bucket string, key []byte) bool {
	return s.HasSegment(s.shape.SegmentOf(bucket, key))
}

// checkKeys reports the first way a key list breaks the rules of an answer:
// strictly ascending in canonical order (so no duplicates), and every key in
// one of the segments asked for.
func checkKeys(kvs []KeyVersion, asked SegmentSet) error {
	for i, kv := range kvs {
		if i > 0 && CompareKeys(kvs[i-1], kv) >= 0 {
			return fmt.Errorf("key list not strictly ascending at %d: %v after %v", i, kv, kvs[i-1])
		}
		if !asked.Has(kv.Bucket, kv.Key) {
			return fmt.Errorf("key %v belongs to segment %d, which was not asked for", kv, asked.shape.SegmentOf(kv.Bucket, kv.Key))
		}
	}
	return nil
}
