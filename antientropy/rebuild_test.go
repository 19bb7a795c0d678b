package antientropy

import (
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/stretchr/testify/require"
)

func TestPacer(t *testing.T) {
	const s = second
	p, err := NewPacer(RebuildConfig{KeysPerSecond: 100, BytesPerSecond: 1000})
	require.NoError(t, err)
	require.Zero(t, p.Take(0, 100, 500), "a second's worth of keys is banked")
	require.Equal(t, s/10, p.Take(0, 10, 0), "keys bind: 10 keys of debt at 100/s")
	require.Equal(t, s/10, p.Take(0, 0, 500), "the longer of the two waits")
	require.Equal(t, 4*s/10, p.Take(0, 0, 400), "bytes bind: 400 bytes of debt at 1000/s")

	require.NoError(t, DefaultRebuildConfig().Validate())
	_, err = NewPacer(RebuildConfig{})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "keys rate 0")
	require.ErrorContains(t, err, "bytes rate 0")
}
