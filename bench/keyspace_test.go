package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyspaceWatermark(t *testing.T) {
	ks := newKeyspace(10)
	require.Equal(t, uint64(10), ks.count())
	a, b, c := ks.claim(), ks.claim(), ks.claim()
	require.Equal(t, []uint64{10, 11, 12}, []uint64{a, b, c})
	ks.ack(c)
	ks.ack(b)
	require.Equal(t, uint64(10), ks.count(), "10 is still in flight: nothing above it is addressable")
	ks.ack(a)
	require.Equal(t, uint64(13), ks.count())
	require.Empty(t, ks.ahead)
}

func TestKeyNames(t *testing.T) {
	var buf []byte
	seen := map[string]bool{}
	for n := range uint64(10_000) {
		buf = keyName(buf, n)
		require.False(t, seen[string(buf)])
		seen[string(buf)] = true
	}
	require.Equal(t, "user6284781860667377211", string(keyName(nil, 0)))
}
