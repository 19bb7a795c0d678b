package ring

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func newRing(t *testing.T, q int, members ...string) *Ring {
	t.Helper()
	r, err := New(q, members)
	require.NoError(t, err)
	return r
}

func TestPlacementWithoutChangeIsTheRing(t *testing.T) {
	r := newRing(t, 64, "a", "b", "c")
	pl := NewPlacement(r, nil, 3, func(string, uint32) bool { t.Fatal("asked about a target"); return false })
	require.False(t, pl.Changing())
	require.True(t, pl.Done())
	for p := range uint32(64) {
		prim, fb := r.Preference(p, 3)
		gp, gf, pending := pl.Route(p, 3)
		require.Equal(t, prim, gp)
		require.Equal(t, fb, gf)
		require.Empty(t, pending)
		require.Empty(t, pl.Targets(p))
	}
}

func TestPlacementMovesReadsOnlyAfterEveryTargetHolds(t *testing.T) {
	cur := newRing(t, 64, "a", "b", "c")
	next := newRing(t, 64, "a", "b", "c", "d")
	holds := map[uint32]map[string]bool{}
	build := func() *Placement {
		return NewPlacement(cur, next, 3, func(n string, p uint32) bool { return holds[p][n] })
	}
	pl := build()
	require.True(t, pl.Changing())
	require.False(t, pl.Done())
	moving := 0
	for p := range uint32(64) {
		ts := pl.Targets(p)
		cp, _ := cur.Preference(p, 3)
		np, _ := next.Preference(p, 3)
		for _, x := range ts {
			require.Contains(t, np, x)
			require.NotContains(t, cp, x)
		}
		prim, _, pending := pl.Route(p, 3)
		if len(ts) == 0 {
			require.True(t, pl.Flipped(p), "nothing to move: flipped from the start")
			require.Equal(t, np, prim)
			continue
		}
		moving++
		require.False(t, pl.Flipped(p))
		require.Equal(t, cp, prim, "reads stay on the current owners")
		require.ElementsMatch(t, ts, pending, "writes also go to every target")
		// All targets but one confirmed: still not flipped.
		holds[p] = map[string]bool{}
		for _, x := range ts[1:] {
			holds[p][x] = true
		}
	}
	require.Positive(t, moving)
	f, m := pl.Flips()
	require.Equal(t, 0, f)
	require.Equal(t, moving, m)
	pl = build()
	for p := range uint32(64) {
		if len(pl.Targets(p)) > 0 {
			require.False(t, pl.Flipped(p))
			for _, x := range pl.Targets(p) {
				holds[p][x] = true
			}
		}
	}
	before := pl.Version()
	pl = build()
	require.NotEqual(t, before, pl.Version())
	require.True(t, pl.Done())
	for p := range uint32(64) {
		cp, _ := cur.Preference(p, 3)
		np, _ := next.Preference(p, 3)
		prim, _, pending := pl.Route(p, 3)
		require.Equal(t, np, prim, "reads moved to the next owners")
		require.ElementsMatch(t, minus(cp, np), pl.Leaving(p))
		for _, x := range cp {
			if !slices.Contains(np, x) {
				require.Contains(t, pending, x, "a leaving owner still gets writes until the change ends")
			}
		}
	}
}

func TestPlacementTargetsGetWritesWhenTheRequestAsksFewerReplicas(t *testing.T) {
	cur := newRing(t, 16, "a", "b")
	next := newRing(t, 16, "a", "b", "c")
	pl := NewPlacement(cur, next, 3, func(string, uint32) bool { return false })
	for p := range uint32(16) {
		require.Equal(t, []string{"c"}, pl.Targets(p))
		_, _, pending := pl.Route(p, 2)
		require.Equal(t, []string{"c"}, pending)
	}
}
