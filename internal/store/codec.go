package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/internal/mpcodec"
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
// vector in actor order without zero entries. The body is dvv's
// hand-written encoding of the object, which writes what the msgpack
// library writes for the struct tags of dvv.Object (with compact
// integers), so records written before it and after it agree byte for
// byte.
func encodeObject(o dvv.Object) ([]byte, error) {
	o = canonical(o)
	size := 16
	for _, s := range o.Siblings {
		size += 32 + len(s.Dot.Actor) + len(s.Value)
	}
	for a := range o.VV {
		size += 12 + len(a)
	}
	rec := append(make([]byte, 0, size), objectFormatV1)
	return o.AppendMsgpack(rec), nil
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
// disk and may be anything: dvv's hand-written decoder checks every
// declared length against the bytes that remain before it slices or
// allocates by it, with the limits mpcheck would apply: the element limit is
// the byte length itself, since every element costs at least one byte; the
// depth limit is far above the object's three levels.
//
// b belongs to pebble and is valid only until its closer runs, so the
// object's values are cut from one private copy of the record: one
// allocation for all of them instead of one each.
func decodeObject(b []byte) (dvv.Object, error) {
	if len(b) == 0 {
		return dvv.Object{}, fmt.Errorf("%w: empty object record", ErrCorrupt)
	}
	if b[0] != objectFormatV1 {
		return dvv.Object{}, fmt.Errorf("%w: object format %d is unknown (this build reads %d)", ErrCorrupt, b[0], objectFormatV1)
	}
	body := bytes.Clone(b[1:])
	r := mpcodec.NewReader(body, mpcheck.Limits{MaxDepth: 16, MaxElements: len(b) + 1})
	var o dvv.Object
	err := o.ReadMsgpack(&r, 1)
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return dvv.Object{}, fmt.Errorf("%w: object: %w", ErrCorrupt, err)
	}
	return o, nil
}
