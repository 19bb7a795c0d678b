package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSyncPaceTurnsOrdinaryWhenSlowSyncsComeOften: a lone slow sync
// among quick ones leaves the calls direct; a few together, or a disk
// where slow syncs are common, make them ordinary; quick syncs bring the
// direct ones back.
func TestSyncPaceTurnsOrdinaryWhenSlowSyncsComeOften(t *testing.T) {
	quick, slow := 300*time.Microsecond, 6*time.Millisecond
	p := syncPace{slow: 5 * time.Millisecond}
	// round observes one slow sync, then n quick ones.
	round := func(n int) {
		p.observe(slow)
		for range n {
			p.observe(quick)
		}
	}
	require.True(t, p.quick())

	p.observe(5 * time.Millisecond) // exactly the limit is not slow
	for range 1000 {
		p.observe(quick)
	}
	p.observe(slow)
	require.True(t, p.quick(), "a lone slow sync")
	for range 100 {
		p.observe(quick)
	}
	require.True(t, p.quick())

	// Three slow syncs together.
	for range 3 {
		p.observe(slow)
	}
	require.False(t, p.quick())

	// A disk where one sync in five is slow stays ordinary.
	for range 200 {
		round(4)
		require.False(t, p.quick())
	}
	// One in twenty is within what a virtual disk does: direct again.
	for range 200 {
		round(19)
	}
	require.True(t, p.quick())

	// A long slow spell is drained by quick syncs in bounded time.
	for range 1000 {
		p.observe(slow)
	}
	require.False(t, p.quick())
	for range bucketCap - ordinaryFrom + 1 {
		p.observe(quick)
	}
	require.True(t, p.quick())
}
