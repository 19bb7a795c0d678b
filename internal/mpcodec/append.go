package mpcodec

import (
	"encoding/binary"
	"math"
)

// MessagePack codes this package writes or reads by name.
const (
	codeNil    = 0xc0
	codeFalse  = 0xc2
	codeTrue   = 0xc3
	codeBin8   = 0xc4
	codeBin16  = 0xc5
	codeBin32  = 0xc6
	codeUint8  = 0xcc
	codeUint16 = 0xcd
	codeUint32 = 0xce
	codeUint64 = 0xcf
	codeInt8   = 0xd0
	codeInt16  = 0xd1
	codeInt32  = 0xd2
	codeInt64  = 0xd3
	codeStr8   = 0xd9
	codeStr16  = 0xda
	codeStr32  = 0xdb
	codeArr16  = 0xdc
	codeArr32  = 0xdd
	codeMap16  = 0xde
	codeMap32  = 0xdf

	fixMapLow   = 0x80
	fixArrayLow = 0x90
	fixStrLow   = 0xa0
	negFixLow   = 0xe0
)

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, codeNil) }

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, codeTrue)
	}
	return append(b, codeFalse)
}

// AppendUint appends v in the fewest bytes (1, 2, 3, 5 or 9).
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= math.MaxInt8:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, codeUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, codeUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, codeUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, codeUint64), v)
}

// AppendInt appends v in the fewest bytes: as AppendUint when v is not
// negative, else as a negative fixint or the narrowest signed integer.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, codeInt8, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, codeInt16), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, codeInt32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, codeInt64), uint64(v))
}

// AppendString appends s as a msgpack str.
func AppendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, fixStrLow|byte(n))
	case n <= math.MaxUint8:
		b = append(b, codeStr8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, codeStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, codeStr32), uint32(n))
	}
	return append(b, s...)
}

// AppendBytes appends v as a msgpack bin, and a nil slice as nil (an empty
// one stays an empty bin: the two decode differently).
func AppendBytes(b []byte, v []byte) []byte {
	if v == nil {
		return AppendNil(b)
	}
	n := len(v)
	switch {
	case n <= math.MaxUint8:
		b = append(b, codeBin8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, codeBin16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, codeBin32), uint32(n))
	}
	return append(b, v...)
}

// AppendMapLen appends the header of a map of n entries.
func AppendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, fixMapLow|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, codeMap16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, codeMap32), uint32(n))
}

// AppendArrayLen appends the header of an array of n items.
func AppendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, fixArrayLow|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, codeArr16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, codeArr32), uint32(n))
}
