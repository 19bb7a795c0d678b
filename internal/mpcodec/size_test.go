package mpcodec

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The size functions say exactly what the appenders write, for every width.
func TestSizesAreWhatTheAppendersWrite(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := rapid.OneOf(rapid.Uint64Range(0, 70000), rapid.Uint64()).Draw(t, "u")
		i := rapid.OneOf(rapid.Int64Range(-70000, 70000), rapid.Int64()).Draw(t, "i")
		n := rapid.OneOf(rapid.IntRange(0, 70000), rapid.IntRange(0, 40)).Draw(t, "n")
		require.Len(t, AppendUint(nil, u), UintSize(u))
		require.Len(t, AppendInt(nil, i), IntSize(i))
		require.Len(t, AppendString(nil, string(bytes.Repeat([]byte{'s'}, n))), StringSize(n))
		require.Len(t, AppendBytes(nil, bytes.Repeat([]byte{'b'}, n)), BytesSize(make([]byte, n)))
		require.Len(t, AppendBytes(nil, nil), BytesSize(nil))
		require.Len(t, AppendMapLen(nil, n), LenSize(n))
		require.Len(t, AppendArrayLen(nil, n), LenSize(n))
	})
}
