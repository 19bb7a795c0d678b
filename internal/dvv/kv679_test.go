package dvv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// These tests are the negative control for TestNoLostWritesAcrossWipes: they
// break the incarnation rule on purpose (a wiped replica keeps its actor id)
// and show that writes are then lost, and that the model check the property
// test relies on reports the loss. Riak's kv679 is this bug.

// TestReusedActorAfterWipeLosesAWrite: replica 0 mints r0.0:1 and r0.0:2 (the
// second replacing the first) and replicates them to replica 1; then it loses
// its data. Under the old actor id its next write is r0.0:1 again, a dot that
// replica 1's vector already covers and no longer holds, so Sync reads the
// new write as one that something replaced, and drops it everywhere.
func TestReusedActorAfterWipeLosesAWrite(t *testing.T) {
	tests := []struct {
		name  string
		reuse bool
		// contextFrom, if not -1, is the replica the late write's client read
		// its context from.
		contextFrom int
		lost        bool
	}{
		{name: "new actor id keeps the write", contextFrom: -1},
		{name: "old actor id loses the write", reuse: true, contextFrom: -1, lost: true},
		// Update mints above the context's counter for its own actor, so a
		// context read from a replica that saw the old dots hides the bug;
		// a blind write (above) does not.
		{name: "old actor id with a context from a replica that saw its dots", reuse: true, contextFrom: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(2)
			c.reuseActorAfterWipe = tt.reuse
			c.put(0, nil, false)
			ctx := c.read(0)
			c.put(0, &ctx, false)
			c.sync(0, 1, false)
			c.wipe(0)
			var lateCtx *clientContext
			if tt.contextFrom >= 0 {
				read := c.read(tt.contextFrom)
				lateCtx = &read
			}
			late := c.put(0, lateCtx, false)
			c.syncAll(c.pairs())

			for r, rep := range c.replicas {
				require.Equal(t, !tt.lost, writeIDs(rep.obj).has(late), "%s = %s", rep.name, describe(rep.obj))
				err := c.check(r)
				if !tt.lost {
					require.NoError(t, err)
					continue
				}
				require.Error(t, err, "the model check missed the lost write on %s", rep.name)
				require.Contains(t, err.Error(), "lost writes [2]")
			}
		})
	}
}

// TestReusedDotHidesADifferentValue: after a wipe under the old actor id, a
// blind write mints the very dot of a write another replica still holds.
// Each replica keeps its own value for that dot, and Equal, which compares
// dots, calls the diverged replicas equal, so anti-entropy would never repair
// them.
func TestReusedDotHidesADifferentValue(t *testing.T) {
	c := newCluster(2)
	c.reuseActorAfterWipe = true
	first := c.put(0, nil, false)
	c.sync(0, 1, false)
	c.wipe(0)
	second := c.put(0, nil, false)
	c.sync(0, 1, false)
	c.sync(1, 0, false)

	r0, r1 := c.replicas[0].obj, c.replicas[1].obj
	require.Equal(t, r0.Siblings[0].Dot, r1.Siblings[0].Dot, "both writes should carry one dot")
	require.Equal(t, []int{second}, writeIDs(r0).sorted())
	require.Equal(t, []int{first}, writeIDs(r1).sorted())
	require.True(t, r0.Equal(r1), "Equal compares dots, so it cannot see the divergence")
	require.Error(t, c.check(0))
	require.Error(t, c.check(1))
}
