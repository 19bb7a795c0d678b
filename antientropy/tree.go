package antientropy

import (
	"fmt"
	"sync/atomic"

	"github.com/cairnkv/cairn"
)

// Tree is one replica's TicTac Merkle tree of one partition. Only the
// segments are stored; a branch is the XOR of its segments and the root the
// XOR of all of them, computed when asked (1,024 loads for the default
// shape), so a write costs one atomic XOR on one word.
//
// Update, Add and every read are safe for concurrent use. Reads of several
// words (Root, Branches, Segments, MarshalBinary) are not a snapshot: taken
// while writes land, they may mix states. An exchange tolerates that (a
// spurious difference costs one more key list; a missed one is found by the
// next exchange). UnmarshalBinary is not safe for concurrent use.
//
// Create trees with NewTree or a Builder; the zero Tree is only a target for
// UnmarshalBinary.
type Tree struct {
	shape Shape
	segs  []atomic.Uint64
	// keys counts keys: +1 per Absent -> present, -1 per present -> Absent.
	// It is informational (a node's status), not part of equality.
	keys atomic.Int64
}

// NewTree returns the empty tree of a shape: the tree of a replica that
// holds no keys.
func NewTree(shape Shape) (*Tree, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	return &Tree{shape: shape, segs: make([]atomic.Uint64, shape.Segments)}, nil
}

// Shape is the tree's geometry.
func (t *Tree) Shape() Shape { return t.shape }

// Keys is the number of keys the tree has seen inserted minus those removed.
func (t *Tree) Keys() int64 { return t.keys.Load() }

// Update records that (bucket, key) went from version from to version to;
// either may be Absent (a new key, or a key removed from the store). It is
// O(1): the key's segment is XORed with KeyHash(from) ^ KeyHash(to), which
// takes the old version out and puts the new one in without reading any
// other key. from must be the version the tree last saw for the key (the
// Version of the object the write replaced), or the segment no longer
// matches the store until the tree is rebuilt.
func (t *Tree) Update(bucket string, key []byte, from, to uint64) {
	if from == to {
		return
	}
	id := keyID(bucket, key)
	xor(&t.segs[t.shape.segmentOfID(id)], keyHash(id, from)^keyHash(id, to))
	switch {
	case from == Absent:
		t.keys.Add(1)
	case to == Absent:
		t.keys.Add(-1)
	}
}

// xor applies a delta with a compare-and-swap loop: sync/atomic has And and
// Or but no Xor.
func xor(w *atomic.Uint64, delta uint64) {
	for {
		v := w.Load()
		if w.CompareAndSwap(v, v^delta) {
			return
		}
	}
}

// SegmentOf is the segment that holds (bucket, key); see Shape.SegmentOf.
func (t *Tree) SegmentOf(bucket string, key []byte) int { return t.shape.SegmentOf(bucket, key) }

// Segment is the hash of segment i: the XOR of KeyHash over its keys. It
// panics if i is out of range, like a slice index.
func (t *Tree) Segment(i int) uint64 { return t.segs[i].Load() }

// Segments returns the hashes of the segments under branch b, in order. It
// panics if b is out of range.
func (t *Tree) Segments(b int) []uint64 {
	if b < 0 || b >= t.shape.Branches {
		panic(fmt.Sprintf("antientropy: branch %d out of range [0, %d)", b, t.shape.Branches))
	}
	per := t.shape.PerBranch()
	out := make([]uint64, per)
	for i := range out {
		out[i] = t.segs[b*per+i].Load()
	}
	return out
}

// Branches returns the hash of every branch, in order: the XOR of its
// segments.
func (t *Tree) Branches() []uint64 {
	per := t.shape.PerBranch()
	out := make([]uint64, t.shape.Branches)
	for i := range t.segs {
		out[i/per] ^= t.segs[i].Load()
	}
	return out
}

// Root is the XOR of every segment. Equal roots mean equal trees up to a
// 2^-64 chance per comparison.
func (t *Tree) Root() uint64 {
	var r uint64
	for i := range t.segs {
		r ^= t.segs[i].Load()
	}
	return r
}

// Equal reports whether two trees have the same shape and segments.
func (t *Tree) Equal(o *Tree) bool {
	if t.shape != o.shape {
		return false
	}
	for i := range t.segs {
		if t.segs[i].Load() != o.segs[i].Load() {
			return false
		}
	}
	return true
}

// Diff returns the segments whose hashes differ between t and o, in
// ascending order: the segments whose key/version sets differ. Trees of
// different shapes cannot be compared.
func (t *Tree) Diff(o *Tree) ([]int, error) {
	if t.shape != o.shape {
		return nil, cairn.InvalidArgument("antientropy: cannot compare a tree of %v with one of %v", t.shape, o.shape)
	}
	var out []int
	for i := range t.segs {
		if t.segs[i].Load() != o.segs[i].Load() {
			out = append(out, i)
		}
	}
	return out, nil
}

// DiffBranches returns the positions at which two lists of hashes (branches,
// or the segments of one branch) differ, ascending. Positions beyond the
// shorter list count as different; callers that received a list from a peer
// check its length first.
func DiffBranches(a, b []uint64) []int {
	var out []int
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			out = append(out, i)
		}
	}
	return out
}
