package membership

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/stretchr/testify/require"
)

// A joining node takes nothing until every target of every partition
// confirmed it holds it; then it makes itself active, and every node's
// ring in effect becomes the ring the data was moved to.
func TestJoiningNodeOwnsOnlyAfterEveryPartitionIsHeld(t *testing.T) {
	c := newCluster(t)
	c.grow(3)
	eventually(t, func() error { return c.converged(names(3)) })
	cfg := c.config("n4", "127.0.0.1:0", []string{c.nodes["n1"].GossipAddr()})
	cfg.Joining = true
	n4 := c.start(cfg)
	eventually(t, func() error {
		for name, m := range c.nodes {
			if e, ok := m.Member("n4"); !ok || e.Status != StatusJoining {
				return fmt.Errorf("%s: n4 is %+v", name, e)
			}
			if !m.Placement().Changing() {
				return fmt.Errorf("%s: no change in flight", name)
			}
		}
		return nil
	})
	pl := n4.Placement()
	require.Equal(t, names(3), pl.Cur().Members(), "the ring in effect is still the old one")
	require.Equal(t, names(4), pl.Next().Members())
	next := pl.Next().Version()
	eventually(t, func() error {
		for name, m := range c.nodes {
			if !m.PeersKnow(next) {
				return fmt.Errorf("%s: some peer does not advertise the change", name)
			}
		}
		return nil
	})
	require.False(t, n4.Activate(), "nothing held yet")

	// Every target confirms every partition it must receive, one at a time.
	for p := range uint32(64) {
		for _, target := range pl.Targets(p) {
			c.nodes[target].MarkHave(next, p)
		}
	}
	eventually(t, func() error {
		if !n4.Placement().Done() {
			f, m := n4.Placement().Flips()
			return fmt.Errorf("n4 sees %d of %d partitions flipped", f, m)
		}
		return nil
	})
	require.True(t, n4.Activate())
	eventually(t, func() error {
		for name, m := range c.nodes {
			if !slices.Equal(m.Ring().Members(), names(4)) || m.Placement().Changing() {
				return fmt.Errorf("%s: ring %v, changing %v", name, m.Ring().Members(), m.Placement().Changing())
			}
		}
		return nil
	})
}

// A mark for a change that is not in flight changes nothing.
func TestMarkHaveForAnotherChangeIsIgnored(t *testing.T) {
	c := newCluster(t)
	c.grow(1)
	m := c.nodes["n1"]
	before, _ := m.Member("n1")
	m.MarkHave(12345, 3)
	after, _ := m.Member("n1")
	require.Equal(t, before, after)
}

// cairn replace: a joining node told to replace a dead member moves, in
// one change, from the ring with the dead member to the ring with itself
// in its place; once every partition flipped it is active, the replaced
// member owns nothing and is removed for good.
func TestReplaceTakesADeadMembersPlaceInOneChange(t *testing.T) {
	c := newCluster(t)
	c.grow(4)
	eventually(t, func() error { return c.converged(names(4)) })
	c.stop("n4")
	cfg := c.config("n5", "127.0.0.1:0", []string{c.nodes["n1"].GossipAddr()})
	cfg.Joining = true
	n5 := c.start(cfg)
	eventually(t, func() error {
		for name, m := range c.nodes {
			if e, ok := m.Member("n5"); !ok || e.Status != StatusJoining {
				return fmt.Errorf("%s: n5 is %+v", name, e)
			}
		}
		return nil
	})

	require.ErrorContains(t, n5.Replace("n5"), "cannot replace itself")
	require.ErrorContains(t, n5.Replace("n9"), "no such member")
	require.ErrorContains(t, c.nodes["n1"].Replace("n4"), "n1 is active")
	require.NoError(t, n5.Replace("n4"))
	require.NoError(t, n5.Replace("n4"), "replacing the same member again is a no-op")

	want := []string{"n1", "n2", "n3", "n5"}
	eventually(t, func() error {
		for name, m := range c.nodes {
			pl := m.Placement()
			if !slices.Equal(pl.Next().Members(), want) || !slices.Equal(pl.Cur().Members(), names(4)) {
				return fmt.Errorf("%s: from %v to %v", name, pl.Cur().Members(), pl.Next().Members())
			}
		}
		return nil
	})
	pl := n5.Placement()
	next := pl.Next().Version()
	for p := range uint32(64) {
		require.Subset(t, []string{"n5"}, pl.Targets(p), "partition %d: only the new node receives", p)
		if slices.Contains(pl.Sources(p), "n4") {
			require.Equal(t, []string{"n5"}, pl.Targets(p), "partition %d: n4's copy goes to n5", p)
		}
	}
	require.False(t, n5.Activate(), "nothing held yet")
	for p := range uint32(64) {
		if len(pl.Targets(p)) > 0 {
			n5.MarkHave(next, p)
		}
	}
	eventually(t, func() error {
		if !n5.Placement().Done() {
			return errors.New("n5 does not see every partition flipped")
		}
		return nil
	})
	require.True(t, n5.Activate())
	eventually(t, func() error {
		for name, m := range c.nodes {
			if !slices.Equal(m.Ring().Members(), want) || m.Placement().Changing() {
				return fmt.Errorf("%s: ring %v, changing %v", name, m.Ring().Members(), m.Placement().Changing())
			}
			if e, _ := m.Member("n4"); e.Status != StatusRemoved {
				return fmt.Errorf("%s: n4 is %s", name, e.Status)
			}
		}
		return nil
	})
	require.ErrorContains(t, n5.Replace("n1"), "n5 is active")
}

// cairn join: a node started alone joins a cluster as a joining node. It
// turns joining before it contacts the seeds, so no member ever sees it
// active; it takes nothing until every partition is held. A node that is
// not alone is refused, and a join no seed answers leaves it active and
// alone as before.
func TestJoinClusterFromAlone(t *testing.T) {
	c := newCluster(t)
	c.grow(3)
	eventually(t, func() error { return c.converged(names(3)) })
	alone := c.start(c.config("n4", "127.0.0.1:0", nil))
	require.Equal(t, []string{"n4"}, alone.Ring().Members(), "started without seeds, it is a cluster of its own")

	require.ErrorContains(t, c.nodes["n1"].JoinCluster([]string{alone.GossipAddr()}), "only a node alone in its own ring")
	require.ErrorContains(t, alone.JoinCluster(nil), "a seed")
	err := alone.JoinCluster([]string{"127.0.0.1:1"})
	require.ErrorIs(t, err, cairn.ErrUnavailable)
	e, _ := alone.Member("n4")
	require.Equal(t, StatusActive, e.Status, "a join no seed answered changes nothing")

	require.NoError(t, alone.JoinCluster([]string{c.nodes["n1"].GossipAddr()}))
	eventually(t, func() error {
		for name, m := range c.nodes {
			e, ok := m.Member("n4")
			if !ok || e.Status != StatusJoining {
				return fmt.Errorf("%s: n4 is %+v", name, e)
			}
			if !slices.Equal(m.Placement().Cur().Members(), names(3)) || !slices.Equal(m.Placement().Next().Members(), names(4)) {
				return fmt.Errorf("%s: from %v to %v", name, m.Placement().Cur().Members(), m.Placement().Next().Members())
			}
		}
		return nil
	})
	require.False(t, alone.Activate(), "nothing held yet")
}
