package membership

import (
	"fmt"
	"slices"
	"testing"

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
