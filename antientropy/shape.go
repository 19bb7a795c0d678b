package antientropy

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/cairnkv/cairn"
)

// MaxSegments bounds a tree's leaves: 65,536 segments are 512 KiB per
// partition, already more than a partition of a few million keys needs, and
// the bound keeps a corrupt or hostile shape from asking for a huge
// allocation.
const MaxSegments = 1 << 16

// Shape is the fixed geometry of a partition's tree. Every replica of a
// partition must use the same shape, or their trees cannot be compared; an
// exchange with a peer of another shape fails at its first step.
type Shape struct {
	// Segments is the number of leaves: a power of two, at most MaxSegments.
	// More segments mean shorter key lists to exchange per difference and a
	// larger tree to compare and save.
	Segments int `msgpack:"s"`
	// Branches is the number of inner nodes under the root, each covering
	// Segments/Branches consecutive segments: a power of two, at most
	// Segments.
	Branches int `msgpack:"b"`
}

// DefaultShape is 1024 segments under 32 branches: 8 KiB per partition, a
// 256-byte branch level, and about 100 keys per segment for a partition of
// 100,000 keys.
func DefaultShape() Shape { return Shape{Segments: 1024, Branches: 32} }

// Validate reports every problem with the shape, wrapping
// cairn.ErrInvalidArgument.
func (s Shape) Validate() error {
	var errs []error
	if s.Segments < 1 || s.Segments > MaxSegments || !powerOfTwo(s.Segments) {
		errs = append(errs, fmt.Errorf("segments %d: want a power of two from 1 to %d", s.Segments, MaxSegments))
	}
	if s.Branches < 1 || !powerOfTwo(s.Branches) {
		errs = append(errs, fmt.Errorf("branches %d: want a power of two", s.Branches))
	} else if s.Branches > s.Segments && s.Segments >= 1 {
		errs = append(errs, fmt.Errorf("branches %d: want at most segments (%d)", s.Branches, s.Segments))
	}
	if len(errs) > 0 {
		return cairn.InvalidArgument("antientropy shape: %v", joinProblems(errs))
	}
	return nil
}

// PerBranch is the number of segments under each branch.
func (s Shape) PerBranch() int { return s.Segments / s.Branches }

// BranchOf is the branch that holds segment i.
func (s Shape) BranchOf(i int) int { return i / s.PerBranch() }

// SegmentOf is the segment that holds (bucket, key). It depends only on the
// key, never on its version, so a key stays in one segment for good. It uses
// the top bits of a hash seeded apart from the ring's, so the keys of one
// partition spread evenly over its segments.
func (s Shape) SegmentOf(bucket string, key []byte) int {
	return s.segmentOfID(keyID(bucket, key))
}

func (s Shape) segmentOfID(id uint64) int {
	if s.Segments <= 1 {
		return 0
	}
	return int(id >> (64 - bits.TrailingZeros(uint(s.Segments))))
}

func (s Shape) String() string { return fmt.Sprintf("%d segments/%d branches", s.Segments, s.Branches) }

func powerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }

// joinProblems puts every problem a Validate found on one line.
func joinProblems(errs []error) string {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}
