package antientropy

import (
	"math"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/stretchr/testify/require"
)

func TestTokenBucket(t *testing.T) {
	const s = second
	b, err := NewTokenBucket(10, 5) // 10 tokens a second, at most 5 banked
	require.NoError(t, err)

	require.True(t, b.Allow(100*s, 5), "starts full")
	require.False(t, b.Allow(100*s, 1), "empty now")
	require.Equal(t, 100*s+s/10, b.ReadyAt(100*s, 1), "one token takes 100 ms")
	require.False(t, b.Allow(100*s+s/20, 1), "half a token after 50 ms")
	require.True(t, b.Allow(100*s+s/10, 1))
	require.InDelta(t, 5, b.Tokens(200*s), 1e-9, "refill stops at the burst")
	require.Equal(t, int64(math.MaxInt64), b.ReadyAt(200*s, 6), "more than the burst never fits")

	// Take runs into debt and says how long until the balance is back.
	require.Zero(t, b.Take(200*s, 5), "covered by the balance")
	require.Equal(t, s/2, b.Take(200*s, 5), "5 tokens of debt take half a second")
	require.InDelta(t, -5, b.Tokens(200*s), 1e-9)
	require.Equal(t, 200*s+s/2, b.ReadyAt(200*s, 0))
	require.Equal(t, 200*s+s/2+s/10, b.ReadyAt(200*s, 1))

	// A clock that steps back refills nothing, and waits count from the
	// latest time seen.
	require.InDelta(t, -5, b.Tokens(150*s), 1e-9)
	require.Equal(t, 50*s+s/2+s/10, b.Take(150*s, 1))
	require.InDelta(t, 0, b.Tokens(200*s+6*s/10), 1e-6)
}

func TestTokenBucketInvalid(t *testing.T) {
	for _, tt := range []struct {
		rate  float64
		burst int
		want  string
	}{
		{0, 1, "rate 0"},
		{-1, 1, "rate -1"},
		{math.NaN(), 1, "rate NaN"},
		{math.Inf(1), 1, "rate +Inf"},
		{1, 0, "burst 0"},
		{0, 0, "rate 0: want a positive, finite number per second; burst 0"},
	} {
		_, err := NewTokenBucket(tt.rate, tt.burst)
		require.ErrorIs(t, err, cairn.ErrInvalidArgument)
		require.ErrorContains(t, err, tt.want)
	}
}

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
