package aae

// Grid states, one byte per partition: what the web console draws for
// each partition of this node's anti-entropy.
const (
	// GridNotReplicated: this node is not a primary of the partition.
	GridNotReplicated byte = '.'
	// GridNever: replicated here, no exchange has completed since start.
	GridNever byte = 'n'
	// GridInSync: the last completed exchange found nothing to repair.
	GridInSync byte = 's'
	// GridDiverged: the last completed exchange found keys that differed
	// (and repaired them, or the next exchange goes on).
	GridDiverged byte = 'd'
	// GridRepairing: an exchange past the root comparison (roots differed)
	// holds the partition's lease now, this node's or a peer's.
	GridRepairing byte = 'r'
)

// Grid reports every partition's anti-entropy state on this node, one
// Grid* byte per partition; nil when anti-entropy is off. It takes the
// manager's locks one after the other, never both, and reads no storage.
func (a *AAE) Grid() []byte {
	if !a.Enabled() {
		return nil
	}
	grid := make([]byte, len(a.trees.slots))
	for i := range grid {
		grid[i] = GridNotReplicated
	}
	a.mu.Lock()
	for p := range a.assigned {
		e := a.last[p]
		switch {
		case !e.done:
			grid[p] = GridNever
		case e.inSync:
			grid[p] = GridInSync
		default:
			grid[p] = GridDiverged
		}
	}
	a.mu.Unlock()
	now := a.d.Now()
	a.leaseMu.Lock()
	for p, l := range a.leases {
		if now.Before(l.until) && int(p) < len(grid) {
			grid[p] = GridRepairing
		}
	}
	a.leaseMu.Unlock()
	return grid
}

// Repaired is the keys anti-entropy repaired since the node started,
// fetched into it and pushed from it.
func (a *AAE) Repaired() uint64 { return a.stats.fetched.Load() + a.stats.pushed.Load() }
