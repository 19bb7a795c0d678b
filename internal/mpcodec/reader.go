package mpcodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cairnkv/cairn/internal/mpcheck"
)

// ErrInvalid is wrapped by the errors about well-formed msgpack of the
// wrong shape: a value of the wrong type, an integer beyond its field, a
// map that names a field twice. Errors about bytes that are not
// well-formed msgpack within the limits wrap mpcheck.ErrMalformed instead.
var ErrInvalid = errors.New("msgpack of the wrong shape")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", mpcheck.ErrMalformed, fmt.Sprintf(format, args...))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Reader reads untrusted msgpack values one at a time from a byte slice.
// Levels count nesting as mpcheck does: a top-level container is at level
// 1, a container inside it at level 2, and a container whose level
// exceeds the limit's MaxDepth is refused.
type Reader struct {
	b        []byte // the bytes not read yet
	elements int    // array items and map entries still allowed
	maxDepth int
}

// NewReader reads b under lim.
func NewReader(b []byte, lim mpcheck.Limits) Reader {
	return Reader{b: b, elements: lim.MaxElements, maxDepth: lim.MaxDepth}
}

// Len is how many bytes are left.
func (r *Reader) Len() int { return len(r.b) }

// End reports an error unless every byte has been read.
func (r *Reader) End() error {
	if len(r.b) != 0 {
		return malformed("%d trailing bytes", len(r.b))
	}
	return nil
}

// NextIsNil reports whether the next value is nil, without reading it.
func (r *Reader) NextIsNil() bool { return len(r.b) > 0 && r.b[0] == codeNil }

// code returns the next code without reading it.
func (r *Reader) code() (byte, error) {
	if len(r.b) == 0 {
		return 0, malformed("truncated")
	}
	return r.b[0], nil
}

// MapLen reads the header of a map at level and returns its number of
// entries, or -1 for nil.
func (r *Reader) MapLen(level int) (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	var n int
	switch {
	case c >= fixMapLow && c < fixMapLow+16:
		n = int(c & 0x0f)
		r.b = r.b[1:]
	case c == codeMap16:
		n, err = r.length(2)
	case c == codeMap32:
		n, err = r.length(4)
	case c == codeNil:
		r.b = r.b[1:]
		return -1, nil
	default:
		return 0, r.wrongType("a map")
	}
	if err != nil {
		return 0, err
	}
	if n > len(r.b)/2 {
		return 0, malformed("map of %d entries exceeds the %d bytes left", n, len(r.b))
	}
	return n, r.container(2*n, level)
}

// ArrayLen reads the header of an array at level and returns its number of
// items, or -1 for nil.
func (r *Reader) ArrayLen(level int) (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	var n int
	switch {
	case c >= fixArrayLow && c < fixArrayLow+16:
		n = int(c & 0x0f)
		r.b = r.b[1:]
	case c == codeArr16:
		n, err = r.length(2)
	case c == codeArr32:
		n, err = r.length(4)
	case c == codeNil:
		r.b = r.b[1:]
		return -1, nil
	default:
		return 0, r.wrongType("an array")
	}
	if err != nil {
		return 0, err
	}
	return n, r.container(n, level)
}

// length reads the code at r.b[0] and the big-endian length of size bytes
// after it.
func (r *Reader) length(size int) (int, error) {
	if len(r.b) < 1+size {
		return 0, malformed("truncated length")
	}
	var n int
	switch size {
	case 1:
		n = int(r.b[1])
	case 2:
		n = int(binary.BigEndian.Uint16(r.b[1:]))
	default:
		n = int(binary.BigEndian.Uint32(r.b[1:]))
	}
	r.b = r.b[1+size:]
	return n, nil
}

// container checks a container's header: its children (2 per map entry)
// must fit in the bytes left, in the element budget and in the depth. An
// empty container is not counted against the depth, as mpcheck does not.
func (r *Reader) container(children, level int) error {
	if children == 0 {
		return nil
	}
	if children > len(r.b) {
		return malformed("container of %d values exceeds the %d bytes left", children, len(r.b))
	}
	if children > r.elements {
		return malformed("too many elements")
	}
	if level > r.maxDepth {
		return malformed("nested deeper than %d", r.maxDepth)
	}
	r.elements -= children
	return nil
}

// raw reads a str or bin and returns its bytes (aliasing the input), or
// nil with ok false for nil.
func (r *Reader) raw(what string) (b []byte, ok bool, err error) {
	c, err := r.code()
	if err != nil {
		return nil, false, err
	}
	var n int
	switch {
	case c >= fixStrLow && c < fixStrLow+32:
		n = int(c & 0x1f)
		r.b = r.b[1:]
	case c == codeStr8, c == codeBin8:
		n, err = r.length(1)
	case c == codeStr16, c == codeBin16:
		n, err = r.length(2)
	case c == codeStr32, c == codeBin32:
		n, err = r.length(4)
	case c == codeNil:
		r.b = r.b[1:]
		return nil, false, nil
	default:
		return nil, false, r.wrongType(what)
	}
	if err != nil {
		return nil, false, err
	}
	if n > len(r.b) {
		return nil, false, malformed("length %d exceeds the %d bytes left", n, len(r.b))
	}
	b = r.b[:n:n]
	r.b = r.b[n:]
	return b, true, nil
}

// Bytes reads a bin (or a str, as the library does). Nil reads as a nil
// slice, an empty bin as an empty one. The result aliases the input.
func (r *Reader) Bytes() ([]byte, error) {
	b, ok, err := r.raw("bytes")
	if !ok || err != nil {
		return nil, err
	}
	if b == nil {
		return []byte{}, nil // the library's empty bin is not nil
	}
	return b, nil
}

// String reads a str (or a bin); nil reads as "".
func (r *Reader) String() (string, error) {
	b, _, err := r.raw("a string")
	return string(b), err
}

// Key reads a map key: a str, a bin, or nil (read as empty). The result
// aliases the input and is meant for comparison only.
func (r *Reader) Key() ([]byte, error) {
	b, _, err := r.raw("a string key")
	return b, err
}

// Bool reads a bool; nil reads as false.
func (r *Reader) Bool() (bool, error) {
	c, err := r.code()
	if err != nil {
		return false, err
	}
	switch c {
	case codeTrue:
		r.b = r.b[1:]
		return true, nil
	case codeFalse, codeNil:
		r.b = r.b[1:]
		return false, nil
	}
	return false, r.wrongType("a bool")
}

// integer reads any msgpack integer; nil reads as 0. A negative value
// comes back as its int64 bit pattern with neg set.
func (r *Reader) integer() (v uint64, neg bool, err error) {
	c, err := r.code()
	if err != nil {
		return 0, false, err
	}
	switch {
	case c <= 0x7f:
		r.b = r.b[1:]
		return uint64(c), false, nil
	case c >= negFixLow:
		r.b = r.b[1:]
		return uint64(int64(int8(c))), true, nil
	case c == codeNil:
		r.b = r.b[1:]
		return 0, false, nil
	}
	size := 0
	switch c {
	case codeUint8, codeInt8:
		size = 1
	case codeUint16, codeInt16:
		size = 2
	case codeUint32, codeInt32:
		size = 4
	case codeUint64, codeInt64:
		size = 8
	default:
		return 0, false, r.wrongType("an integer")
	}
	if len(r.b) < 1+size {
		return 0, false, malformed("truncated integer")
	}
	p := r.b[1 : 1+size]
	r.b = r.b[1+size:]
	switch c {
	case codeUint8:
		return uint64(p[0]), false, nil
	case codeUint16:
		return uint64(binary.BigEndian.Uint16(p)), false, nil
	case codeUint32:
		return uint64(binary.BigEndian.Uint32(p)), false, nil
	case codeUint64:
		return binary.BigEndian.Uint64(p), false, nil
	case codeInt8:
		v := int64(int8(p[0]))
		return uint64(v), v < 0, nil
	case codeInt16:
		v := int64(int16(binary.BigEndian.Uint16(p)))
		return uint64(v), v < 0, nil
	case codeInt32:
		v := int64(int32(binary.BigEndian.Uint32(p)))
		return uint64(v), v < 0, nil
	}
	u := binary.BigEndian.Uint64(p) // codeInt64
	return u, int64(u) < 0, nil
}

// Uint reads an integer in [0, max], in any width; nil reads as 0. Unlike
// the library, which wraps a negative number or truncates a wide one, it
// refuses an integer out of range.
func (r *Reader) Uint(max uint64) (uint64, error) {
	v, neg, err := r.integer()
	switch {
	case err != nil:
		return 0, err
	case neg:
		return 0, invalid("%d is negative", int64(v))
	case v > max:
		return 0, invalid("%d is more than %d", v, max)
	}
	return v, nil
}

// Int reads an integer in [min, max], in any width; nil reads as 0.
func (r *Reader) Int(min, max int64) (int64, error) {
	v, neg, err := r.integer()
	switch {
	case err != nil:
		return 0, err
	case !neg && v > math.MaxInt64:
		return 0, invalid("%d is more than %d", v, max)
	case int64(v) < min || int64(v) > max:
		return 0, invalid("%d is outside [%d, %d]", int64(v), min, max)
	}
	return int64(v), nil
}

// Skip reads past one value of any shape at level, within the limits.
func (r *Reader) Skip(level int) error {
	size, elements, err := mpcheck.Measure(r.b, mpcheck.Limits{MaxDepth: r.maxDepth - level + 1, MaxElements: r.elements})
	if err != nil {
		return err
	}
	r.b = r.b[size:]
	r.elements -= elements
	return nil
}

// wrongType explains the value at the start of r.b, which does not fit
// where it is: a value that is not well-formed msgpack (an unknown code, an
// extension, a length beyond the bytes left) is reported as such, as
// mpcheck would, rather than as misplaced.
func (r *Reader) wrongType(want string) error {
	lim := mpcheck.Limits{MaxDepth: r.maxDepth, MaxElements: r.elements}
	if _, _, err := mpcheck.Measure(r.b, lim); err != nil {
		return err
	}
	return invalid("code 0x%02x where %s belongs", r.b[0], want)
}
