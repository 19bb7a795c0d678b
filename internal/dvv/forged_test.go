package dvv

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// These tests are the negative control for TestNoLostWritesWithForgedContexts:
// they apply a forged context without the coordinator's rule and show that
// acknowledged writes are then lost, and that the model check reports the
// loss; under the rule the same contexts are refused or clamped.

// TestForgedCounterCoversFutureWrites: a client forges a context naming
// counter 2^40 for replica 1's actor and writes through replica 0. The
// object's vector then covers replica 1's next writes before they are
// made, and wherever they meet it they read as seen and replaced.
func TestForgedCounterCoversFutureWrites(t *testing.T) {
	forged := &clientContext{vv: VV{"r1.0": 1 << 40}, forged: true}
	t.Run("without the rule", func(t *testing.T) {
		c := newCluster(2)
		c.put(0, forged, false)
		later := c.put(1, nil, false)
		c.syncAll(c.pairs())
		for r, rep := range c.replicas {
			require.False(t, writeIDs(rep.obj).has(later), "%s = %s", rep.name, describe(rep.obj))
			require.ErrorContains(t, c.check(r), "lost writes [1]")
		}
	})
	t.Run("under the rule", func(t *testing.T) {
		c := newCluster(2)
		for _, fallback := range []bool{false, true} {
			id, vv, out := c.coordinate(0, forged, []int{1}, fallback, false)
			if !fallback {
				require.Equal(t, refused, out)
				require.Equal(t, -1, id)
				continue
			}
			require.Equal(t, clamped, out)
			require.Empty(t, vv, "nothing of the forged context was ever minted")
		}
		later := c.put(1, nil, false)
		c.syncAll(c.pairs())
		for r, rep := range c.replicas {
			require.True(t, writeIDs(rep.obj).has(later), "%s = %s", rep.name, describe(rep.obj))
			require.NoError(t, c.check(r))
		}
	})
}

// TestForgedCounterWrapsToZero: a context naming 2^64-1 for the
// coordinator's own actor would make the next dot wrap to counter 0, which
// every vector covers; Update refuses it, and the rule never gets there.
func TestForgedCounterWrapsToZero(t *testing.T) {
	c := newCluster(2)
	first := c.put(0, nil, false)
	c.sync(0, 1, false)
	forged := VV{"r0.0": math.MaxUint64}
	_, err := c.replicas[0].obj.Update(forged, "r0.0", []byte("x"), false, 0)
	require.ErrorIs(t, err, ErrCounterOverflow)

	id, _, out := c.coordinate(0, &clientContext{vv: forged, forged: true}, []int{1}, false, false)
	require.Equal(t, refused, out)
	require.Equal(t, -1, id)
	for r, rep := range c.replicas {
		require.Equal(t, []int{first}, writeIDs(rep.obj).sorted())
		require.NoError(t, c.check(r))
	}
}
