package quorum

// Target is one node a request goes to.
type Target struct {
	Node string
	// Primary is false for a fallback standing in for an unreachable
	// primary; only primaries count toward PR and PW.
	Primary bool
	// For names the primary a fallback stands in for: the owner of the
	// hint the fallback keeps. Empty for a primary.
	For string
}

func (t Target) String() string {
	if t.Primary {
		return t.Node
	}
	if t.For == "" {
		return t.Node + " (fallback)"
	}
	return t.Node + " (for " + t.For + ")"
}

// Targets picks the nodes a request goes to, one per primary slot, in
// preference order. A primary that up reports up is its own target. A
// primary that is down is replaced, when sloppy, by the next fallback (in
// order) that is up and not already a target; otherwise, or when no
// fallback is left, the primary stays the target anyway, so that the
// request counts it as a failure and its error names it rather than
// silently asking fewer nodes.
//
// The targets are distinct nodes: a primary listed twice fills one slot,
// and a fallback that is also a primary is never used. up is asked at most
// once per node.
func Targets(primaries, fallbacks []string, up func(string) bool, sloppy bool) []Target {
	targets := make([]Target, 0, len(primaries))
	taken := make(map[string]bool, len(primaries))
	for _, p := range primaries {
		taken[p] = true
	}
	seen := make(map[string]bool, len(primaries))
	next := 0 // fallbacks before next were used or found down
	for _, p := range primaries {
		if seen[p] {
			continue
		}
		seen[p] = true
		if up(p) {
			targets = append(targets, Target{Node: p, Primary: true})
			continue
		}
		stand := ""
		for sloppy && stand == "" && next < len(fallbacks) {
			f := fallbacks[next]
			next++
			if !taken[f] && up(f) {
				stand = f
			}
		}
		if stand == "" {
			targets = append(targets, Target{Node: p, Primary: true})
			continue
		}
		taken[stand] = true
		targets = append(targets, Target{Node: stand, Primary: false, For: p})
	}
	return targets
}
