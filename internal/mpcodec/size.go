package mpcodec

import "math"

// The sizes of what the appenders write, so that a caller can tell how
// large a message will be before building it (an answer that would not
// fit a frame is shaped differently, not built and thrown away).

// UintSize is how many bytes AppendUint writes for v.
func UintSize(v uint64) int {
	switch {
	case v <= math.MaxInt8:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	}
	return 9
}

// IntSize is how many bytes AppendInt writes for v.
func IntSize(v int64) int {
	switch {
	case v >= 0:
		return UintSize(uint64(v))
	case v >= -32:
		return 1
	case v >= math.MinInt8:
		return 2
	case v >= math.MinInt16:
		return 3
	case v >= math.MinInt32:
		return 5
	}
	return 9
}

// StringSize is how many bytes AppendString writes for a string of n
// bytes.
func StringSize(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	}
	return 5 + n
}

// BytesSize is how many bytes AppendBytes writes for v (nil included).
func BytesSize(v []byte) int {
	n := len(v)
	switch {
	case v == nil:
		return 1
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	}
	return 5 + n
}

// LenSize is how many bytes AppendMapLen or AppendArrayLen writes for n
// entries or items.
func LenSize(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= math.MaxUint16:
		return 3
	}
	return 5
}
