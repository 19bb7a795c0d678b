package mpcheck

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Limits bound the shape of a value beyond the plain byte count.
type Limits struct {
	// MaxDepth is how deeply arrays and maps may nest.
	MaxDepth int
	// MaxElements is the total number of array items plus map entries in the
	// whole value. A decoder spends tens of bytes of memory per element that
	// costs one or two bytes on the wire, so this caps the amplification.
	MaxElements int
}

// DefaultLimits suit every message cairn sends: objects carry at most a few
// hundred siblings and version-vector entries, never thousands of nested levels.
func DefaultLimits() Limits {
	return Limits{MaxDepth: 16, MaxElements: 1 << 16}
}

// ErrMalformed is wrapped by every error Check returns.
var ErrMalformed = errors.New("malformed msgpack")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Check reports whether b holds exactly one msgpack value within the limits,
// with no trailing bytes. It rejects extension types: cairn uses none, and the
// library would hand them to registered decoders we do not control.
func Check(b []byte, lim Limits) error {
	n, _, err := Measure(b, lim)
	if err != nil {
		return err
	}
	if n != len(b) {
		return malformed("%d trailing bytes", len(b)-n)
	}
	return nil
}

// Measure checks the one msgpack value at the start of b as Check does, and
// returns how many bytes it takes and how many array items and map entries
// (keys and values) it holds. Bytes after the value are not looked at: a
// decoder skips a value it does not know with it.
func Measure(b []byte, lim Limits) (size, elements int, err error) {
	pos := 0
	// pending[i] is how many values are still owed to the container open at
	// depth i; the bottom entry stands for the single top-level value.
	var stackBuf [32]int
	pending := append(stackBuf[:0], 1)
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if pos >= len(b) {
			return 0, 0, malformed("truncated at byte %d", pos)
		}
		c := b[pos]
		pos++
		var payload, children int
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
			// fixints, nil, booleans: the code is the whole value.
		case c >= 0x80 && c <= 0x8f:
			children = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			children = int(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			payload = int(c & 0x1f)
		default:
			n, lenBytes, kind, err := header(c)
			if err != nil {
				return 0, 0, err
			}
			if kind != fixedPayload {
				if len(b)-pos < lenBytes {
					return 0, 0, malformed("truncated length at byte %d", pos)
				}
				n = readLen(b[pos : pos+lenBytes])
				pos += lenBytes
			}
			switch kind {
			case arrayKind:
				children = n
			case mapKind:
				if n > (len(b)-pos)/2 {
					return 0, 0, malformed("map of %d entries at byte %d exceeds the %d bytes left", n, pos, len(b)-pos)
				}
				children = 2 * n
			default:
				payload = n
			}
		}
		if payload > 0 {
			if payload > len(b)-pos {
				return 0, 0, malformed("length %d at byte %d exceeds the %d bytes left", payload, pos, len(b)-pos)
			}
			pos += payload
		}
		if children > 0 {
			if children > len(b)-pos {
				return 0, 0, malformed("container of %d values at byte %d exceeds the %d bytes left", children, pos, len(b)-pos)
			}
			elements += children
			if elements > lim.MaxElements {
				return 0, 0, malformed("more than %d elements", lim.MaxElements)
			}
			if len(pending) > lim.MaxDepth {
				return 0, 0, malformed("nested deeper than %d", lim.MaxDepth)
			}
			pending = append(pending, children)
		}
	}
	return pos, elements, nil
}

type headerKind int

const (
	fixedPayload headerKind = iota // payload size is implied by the code
	bytesKind                      // str or bin: a length, then that many bytes
	arrayKind
	mapKind
)

// header describes the codes above 0xc0 that are not fixints: how many bytes
// of length follow, or for fixed-size scalars the payload size itself.
func header(c byte) (fixed, lenBytes int, kind headerKind, err error) {
	switch c {
	case 0xcc, 0xd0:
		return 1, 0, fixedPayload, nil
	case 0xcd, 0xd1:
		return 2, 0, fixedPayload, nil
	case 0xca, 0xce, 0xd2:
		return 4, 0, fixedPayload, nil
	case 0xcb, 0xcf, 0xd3:
		return 8, 0, fixedPayload, nil
	case 0xc4, 0xd9:
		return 0, 1, bytesKind, nil
	case 0xc5, 0xda:
		return 0, 2, bytesKind, nil
	case 0xc6, 0xdb:
		return 0, 4, bytesKind, nil
	case 0xdc:
		return 0, 2, arrayKind, nil
	case 0xdd:
		return 0, 4, arrayKind, nil
	case 0xde:
		return 0, 2, mapKind, nil
	case 0xdf:
		return 0, 4, mapKind, nil
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return 0, 0, 0, malformed("extension type 0x%02x is not accepted", c)
	default:
		return 0, 0, 0, malformed("invalid code 0x%02x", c)
	}
}

func readLen(b []byte) int {
	switch len(b) {
	case 1:
		return int(b[0])
	case 2:
		return int(binary.BigEndian.Uint16(b))
	default:
		// A 32-bit length always fits in int on the 64-bit platforms we build for;
		// on 32-bit ones an absurd length still fails the remaining-bytes check.
		return int(binary.BigEndian.Uint32(b))
	}
}

// Unmarshal checks b with DefaultLimits and then decodes it into v.
func Unmarshal(b []byte, v any) error {
	return UnmarshalLimits(b, v, DefaultLimits())
}

// UnmarshalLimits checks b with lim and then decodes it into v. Unknown fields
// are ignored so that newer peers can add fields without breaking older ones.
func UnmarshalLimits(b []byte, v any, lim Limits) error {
	if err := Check(b, lim); err != nil {
		return err
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
