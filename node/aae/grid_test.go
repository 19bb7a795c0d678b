package aae

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGridShowsEachPartitionsState: the console's grid maps what the
// manager knows of each partition: not replicated, never exchanged, the
// last exchange in sync or not, and a lease held by an exchange now.
func TestGridShowsEachPartitionsState(t *testing.T) {
	s, trees, r := openWithData(t, 10)
	deps := Deps{Name: "n1", Store: s, Peers: noPeers{}, Members: alone{r}, Trees: trees,
		CheckKey: func(uint32, string, []byte) error { return nil }}
	a, err := New(DefaultConfig(), deps)
	require.NoError(t, err)
	a.mu.Lock()
	for p := range uint32(4) {
		a.assigned[p] = []string{"n2"}
	}
	a.last[1] = partExchange{done: true, inSync: true}
	a.last[2] = partExchange{done: true}
	a.mu.Unlock()
	require.True(t, a.acquire(3, "n2"))

	grid := a.Grid()
	require.Len(t, grid, testPartitions)
	require.Equal(t, "nsdr.", string(grid[:5]))

	a.release(3, "n2")
	require.Equal(t, byte(GridNever), a.Grid()[3], "a released lease is no exchange")

	deps.Trees = nil
	off := DefaultConfig()
	off.Enabled = false
	a, err = New(off, deps)
	require.NoError(t, err)
	require.Nil(t, a.Grid(), "anti-entropy off: no grid")
}
