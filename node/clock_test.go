package node

import (
	"math"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/stretchr/testify/require"
)

// The clock's stamps only grow, whatever the wall clock does, and a stamp
// passes the floor it is given without moving the clock's own ticks.
func TestHLCStamps(t *testing.T) {
	wall := time.Unix(0, 1000)
	c := newHLC(func() time.Time { return wall })
	require.Equal(t, int64(1000), c.stamp(0), "the wall clock when it moved on")
	require.Equal(t, int64(1001), c.stamp(0), "one past the last tick when it stood still")
	wall = time.Unix(0, 500)
	require.Equal(t, int64(1002), c.stamp(0), "one past the last tick when it went back")
	require.Equal(t, int64(5001), c.stamp(5000), "one past what the key held")
	require.Equal(t, int64(1004), c.stamp(0), "a floor does not move the node's clock")
	wall = time.Unix(0, 9000)
	require.Equal(t, int64(9000), c.stamp(10), "a floor below the tick changes nothing")

	require.Equal(t, int64(math.MaxInt64), c.stamp(math.MaxInt64), "the last nanosecond there is, not a wrap")
	end := newHLC(func() time.Time { return time.Unix(0, math.MaxInt64) })
	require.Equal(t, int64(math.MaxInt64), end.stamp(0))
	require.Equal(t, int64(math.MaxInt64), end.stamp(0), "the clock stays at its end")
}

// A context's stamp is taken when the copy holds a write that late or it
// is within maxStampAhead of the clock; beyond both it is refused.
func TestHLCContextStamp(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newHLC(func() time.Time { return now })
	require.NoError(t, c.contextStamp(0, 0))
	require.NoError(t, c.contextStamp(now.Add(maxStampAhead).UnixNano(), 0))
	far := now.Add(3 * time.Hour).UnixNano()
	require.NoError(t, c.contextStamp(far, far), "a copy that holds a write that late vouches for it")
	err := c.contextStamp(far, now.UnixNano())
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "3h0m0s ahead of this node's clock")
}
