package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/vmihailenco/msgpack/v5"
)

// objectFormatV1 is the first byte of every object record: msgpack of
// dvv.Object follows. A future layout takes a new number and decodeObject
// learns to read both.
const objectFormatV1 byte = 1

// ErrCorrupt is wrapped by every error about bytes read back from disk that
// do not decode: a damaged disk, or a record written by a newer cairn.
var ErrCorrupt = errors.New("store: corrupt record")

// encodeObject writes the record of o. Objects equal field by field, up to
// sibling order and zero vector entries, encode to equal bytes, so replicas
// can compare records by hash: siblings are written in dot order, and the
// vector in actor order (dvv.VV's EncodeMsgpack) without zero entries. The
// struct tags of dvv.Object define the shape, so a field added there is
// stored without a change here.
func encodeObject(o dvv.Object) ([]byte, error) {
	o = canonical(o)
	size := 16
	for _, s := range o.Siblings {
		size += 32 + len(s.Dot.Actor) + len(s.Value)
	}
	for a := range o.VV {
		size += 12 + len(a)
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.WriteByte(objectFormatV1)
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	// VV sorts itself; this sorts the plain map types a later dvv field
	// might bring.
	enc.SetSortMapKeys(true)
	// Dot counters are small: compact integers take one to five bytes, not
	// nine.
	enc.UseCompactInts(true)
	if err := enc.Encode(o); err != nil {
		return nil, fmt.Errorf("store: encode object: %w", err)
	}
	return buf.Bytes(), nil
}

// canonical returns o with its siblings in dot order and no zero vector
// entries (a zero counter means the same as none). It copies only what it
// changes; objects from dvv are already canonical.
func canonical(o dvv.Object) dvv.Object {
	byDot := func(x, y dvv.Sibling) int { return x.Dot.Compare(y.Dot) }
	if !slices.IsSortedFunc(o.Siblings, byDot) {
		o.Siblings = slices.SortedFunc(slices.Values(o.Siblings), byDot)
	}
	for _, c := range o.VV {
		if c == 0 {
			o.VV = maps.Clone(o.VV)
			maps.DeleteFunc(o.VV, func(_ string, c uint64) bool { return c == 0 })
			break
		}
	}
	return o
}

// decodeObject reads a record written by encodeObject. The bytes come from
// disk and may be anything: mpcheck validates them before the msgpack library
// allocates by any declared length. The element limit is the byte length
// itself, since every element costs at least one byte; the depth limit is far
// above the object's three levels.
func decodeObject(b []byte) (dvv.Object, error) {
	if len(b) == 0 {
		return dvv.Object{}, fmt.Errorf("%w: empty object record", ErrCorrupt)
	}
	if b[0] != objectFormatV1 {
		return dvv.Object{}, fmt.Errorf("%w: object format %d is unknown (this build reads %d)", ErrCorrupt, b[0], objectFormatV1)
	}
	var o dvv.Object
	lim := mpcheck.Limits{MaxDepth: 16, MaxElements: len(b) + 1}
	if err := mpcheck.UnmarshalLimits(b[1:], &o, lim); err != nil {
		return dvv.Object{}, fmt.Errorf("%w: object: %w", ErrCorrupt, err)
	}
	return o, nil
}
