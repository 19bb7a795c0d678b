package quorum

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// parseTargets reads the scripts' notation: "n1" is a primary, "n4*n2" the
// fallback n4 standing in for n2, "n4*" a fallback standing in for no one.
func parseTargets(specs []string) []Target {
	targets := make([]Target, 0, len(specs))
	for _, s := range specs {
		targets = append(targets, parseTarget(s))
	}
	return targets
}

// parseTarget reads "n1" (a primary) or "n4*n2" (n4 standing in for n2).
func parseTarget(s string) Target {
	node, forNode, fallback := strings.Cut(s, "*")
	return Target{Node: node, Primary: !fallback, For: forNode}
}

func TestTargets(t *testing.T) {
	primaries := []string{"n1", "n2", "n3"}
	fallbacks := []string{"n4", "n5", "n6"}
	for _, tc := range []struct {
		name      string
		primaries []string
		fallbacks []string
		down      []string
		sloppy    bool
		want      string
	}{
		{name: "all up", down: nil, sloppy: true, want: "n1 n2 n3"},
		{name: "all up strict", down: nil, sloppy: false, want: "n1 n2 n3"},
		{name: "one down sloppy", down: []string{"n2"}, sloppy: true, want: "n1 n4*n2 n3"},
		{name: "one down strict keeps it", down: []string{"n2"}, sloppy: false, want: "n1 n2 n3"},
		{name: "two down take fallbacks in order", down: []string{"n1", "n3"}, sloppy: true, want: "n4*n1 n2 n5*n3"},
		{name: "down fallback skipped", down: []string{"n1", "n4"}, sloppy: true, want: "n5*n1 n2 n3"},
		{name: "every primary down", down: []string{"n1", "n2", "n3"}, sloppy: true, want: "n4*n1 n5*n2 n6*n3"},
		{name: "fallbacks run out", down: []string{"n1", "n2", "n3", "n5"}, sloppy: true, want: "n4*n1 n6*n2 n3"},
		{name: "everything down", down: []string{"n1", "n2", "n3", "n4", "n5", "n6"}, sloppy: true, want: "n1 n2 n3"},
		{name: "no fallbacks", fallbacks: []string{}, down: []string{"n2"}, sloppy: true, want: "n1 n2 n3"},
		{name: "fallback that is a primary is never used", fallbacks: []string{"n1", "n4"},
			down: []string{"n2"}, sloppy: true, want: "n1 n4*n2 n3"},
		{name: "fallback listed twice is used once", fallbacks: []string{"n4", "n4", "n5"},
			down: []string{"n1", "n2"}, sloppy: true, want: "n4*n1 n5*n2 n3"},
		{name: "primary listed twice fills one slot", primaries: []string{"n1", "n2", "n1"},
			down: nil, sloppy: true, want: "n1 n2"},
		{name: "no primaries", primaries: []string{}, down: nil, sloppy: true, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := primaries, fallbacks
			if tc.primaries != nil {
				p = tc.primaries
			}
			if tc.fallbacks != nil {
				f = tc.fallbacks
			}
			asked := map[string]int{}
			up := func(node string) bool {
				asked[node]++
				return !slices.Contains(tc.down, node)
			}
			got := Targets(p, f, up, tc.sloppy)
			require.Equal(t, parseTargets(strings.Fields(tc.want)), got)
			for node, n := range asked {
				require.Equal(t, 1, n, "up(%s) asked %d times", node, n)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	require.Equal(t, "n1", Target{Node: "n1", Primary: true}.String())
	require.Equal(t, "n4 (for n2)", Target{Node: "n4", For: "n2"}.String())
	require.Equal(t, "n4 (fallback)", Target{Node: "n4"}.String())
}

// TestTargetsProperties checks Targets against its contract for random
// preference lists and liveness.
func TestTargetsProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pool := []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"}
		primaries := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 0, 5, rapid.ID[string]).Draw(t, "primaries")
		// Fallbacks come from the same pool, so some may repeat a primary
		// or each other: Targets must still never use a node twice.
		fallbacks := rapid.SliceOfN(rapid.SampledFrom(pool), 0, 5).Draw(t, "fallbacks")
		down := map[string]bool{}
		for _, n := range pool {
			down[n] = rapid.Bool().Draw(t, "down "+n)
		}
		sloppy := rapid.Bool().Draw(t, "sloppy")
		up := func(n string) bool { return !down[n] }

		targets := Targets(primaries, fallbacks, up, sloppy)
		if len(targets) != len(primaries) {
			t.Fatalf("%d targets for %d primaries", len(targets), len(primaries))
		}
		used := map[string]bool{}
		lastFallback := -1
		for i, tg := range targets {
			p := primaries[i]
			if used[tg.Node] {
				t.Fatalf("%s is a target twice: %v", tg.Node, targets)
			}
			used[tg.Node] = true
			switch {
			case tg.Primary:
				if tg.Node != p || tg.For != "" {
					t.Fatalf("slot %d of %s holds %+v", i, p, tg)
				}
				if !up(p) && sloppy {
					// Kept only when no usable fallback was left after the
					// ones already taken.
					for j := lastFallback + 1; j < len(fallbacks); j++ {
						f := fallbacks[j]
						if up(f) && !slices.Contains(primaries, f) && !used[f] {
							t.Fatalf("down primary %s kept while fallback %s was free", p, f)
						}
					}
				}
			default:
				j := slices.Index(fallbacks, tg.Node)
				switch {
				case !sloppy:
					t.Fatalf("fallback %+v in a strict request", tg)
				case up(p):
					t.Fatalf("fallback %+v replaces %s, which is up", tg, p)
				case tg.For != p:
					t.Fatalf("fallback %+v in the slot of %s", tg, p)
				case j < 0 || !up(tg.Node) || slices.Contains(primaries, tg.Node):
					t.Fatalf("fallback %+v is not an up fallback", tg)
				case j <= lastFallback:
					t.Fatalf("fallback %+v taken out of order", tg)
				}
				// Every up fallback it passed over must already be taken.
				for k := lastFallback + 1; k < j; k++ {
					f := fallbacks[k]
					if up(f) && !slices.Contains(primaries, f) && !used[f] {
						t.Fatalf("fallback %s skipped for %s", f, tg.Node)
					}
				}
				lastFallback = j
			}
		}
	})
}
