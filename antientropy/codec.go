package antientropy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// ErrCorrupt is returned by UnmarshalBinary for bytes that are not a tree
// this package wrote: the node then rebuilds the tree from storage.
var ErrCorrupt = errors.New("antientropy: corrupt saved tree")

// The saved form of a tree (all integers little-endian):
//
//	+-----+-----+-------------+--------------+--------------+----------+----------------+-------------+
//	| 'c' | 't' | version (1) | log2(S) (1)  | log2(B) (1)  | keys (8) | S x segment (8) | xxhash64 (8) |
//	+-----+-----+-------------+--------------+--------------+----------+----------------+-------------+
//
// The checksum covers every byte before it. The total length is fixed by
// the shape, and checked before anything is allocated, so a short, long or
// hostile input can make UnmarshalBinary allocate at most its own length.
const (
	codecVersion = 1
	headerLen    = 2 + 1 + 1 + 1 + 8
	checksumLen  = 8
)

// MarshalBinary saves the tree, for a node to store on clean shutdown.
func (t *Tree) MarshalBinary() ([]byte, error) {
	if err := t.shape.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, headerLen+8*len(t.segs)+checksumLen)
	b = append(b, 'c', 't', codecVersion,
		byte(bits.TrailingZeros(uint(t.shape.Segments))), byte(bits.TrailingZeros(uint(t.shape.Branches))))
	b = binary.LittleEndian.AppendUint64(b, uint64(t.keys.Load()))
	for i := range t.segs {
		b = binary.LittleEndian.AppendUint64(b, t.segs[i].Load())
	}
	return binary.LittleEndian.AppendUint64(b, xxhash.Sum64(b)), nil
}

// UnmarshalBinary replaces t with a tree saved by MarshalBinary. Bytes that
// are truncated, altered or of another version give an error wrapping
// ErrCorrupt and leave t unchanged.
func (t *Tree) UnmarshalBinary(data []byte) error {
	if len(data) < headerLen+checksumLen {
		return fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorrupt, len(data))
	}
	if data[0] != 'c' || data[1] != 't' {
		return fmt.Errorf("%w: bad magic %q", ErrCorrupt, data[:2])
	}
	if data[2] != codecVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrCorrupt, data[2], codecVersion)
	}
	if data[3] > 16 || data[4] > data[3] {
		return fmt.Errorf("%w: shape 2^%d segments, 2^%d branches", ErrCorrupt, data[3], data[4])
	}
	shape := Shape{Segments: 1 << data[3], Branches: 1 << data[4]}
	if err := shape.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if want := headerLen + 8*shape.Segments + checksumLen; len(data) != want {
		return fmt.Errorf("%w: %d bytes, want %d for %v", ErrCorrupt, len(data), want, shape)
	}
	body := data[:len(data)-checksumLen]
	if sum := binary.LittleEndian.Uint64(data[len(body):]); sum != xxhash.Sum64(body) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	segs := make([]atomic.Uint64, shape.Segments)
	for i := range segs {
		segs[i].Store(binary.LittleEndian.Uint64(body[headerLen+8*i:]))
	}
	t.shape = shape
	t.segs = segs
	t.keys.Store(int64(binary.LittleEndian.Uint64(data[5:])))
	return nil
}
