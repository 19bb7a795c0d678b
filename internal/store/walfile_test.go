package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSyncPaceFallsBackAfterASlowSync: a sync slower than the limit sends
// the WAL through ordinary system calls for the backoff after it, and
// quick ones change nothing.
func TestSyncPaceFallsBackAfterASlowSync(t *testing.T) {
	ms := int64(time.Millisecond)
	p := syncPace{epoch: time.Now(), slow: 5 * time.Millisecond, backoff: time.Second}
	require.True(t, p.quickAt(0))

	p.observe(10*ms, 15*ms) // exactly the limit is not slow
	require.True(t, p.quickAt(15*ms))

	p.observe(20*ms, 26*ms)
	require.False(t, p.quickAt(26*ms))
	require.False(t, p.quickAt(1025*ms))
	require.True(t, p.quickAt(1026*ms))

	// A quick sync does not cut a backoff short; a second slow one
	// extends it.
	p.observe(30*ms, 31*ms)
	require.False(t, p.quickAt(1025*ms))
	p.observe(1000*ms, 1010*ms)
	require.False(t, p.quickAt(1500*ms))
	require.True(t, p.quickAt(2010*ms))
}
