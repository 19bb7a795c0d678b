package dvv

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// Pruning retired actors, checked on histories (history_test.go): replicas
// restart under new actors (the old ones retire), copies travel as
// messages that may arrive late (hints, replica puts, repairs in flight),
// and a prune drops the entries of retired actors from some replicas'
// vectors whenever the rule of docs/ARCHITECTURE.md allows it: every
// replica's copy and every copy in flight are equal, and no sibling names
// the actor. After every step each replica must hold exactly the writes
// the model says (no acknowledged write lost, no replaced write back), and
// its vector may differ from the model's only by pruned entries.

// message is a copy of a replica's object on its way to another replica.
type message struct {
	obj  Object
	seen writeSet
}

// pruneHistory is a history with restarts, late messages and prunes.
type pruneHistory struct {
	*cluster
	pool   []message
	pruned map[string]bool // every actor some prune dropped
	prunes int
}

// retired reports whether no replica mints under the actor any more.
func (h *pruneHistory) retired(a string) bool {
	for _, rep := range h.replicas {
		if rep.actor == a {
			return false
		}
	}
	return true
}

// restart is an unclean restart that lost nothing: the replica keeps its
// data and takes a new actor, and the old one retires.
func (h *pruneHistory) restart(r int) {
	rep := h.replicas[r]
	rep.incarnation++
	rep.actor = fmt.Sprintf("%s.%d", rep.name, rep.incarnation)
}

func (h *pruneHistory) send(r int) {
	rep := h.replicas[r]
	h.pool = append(h.pool, message{obj: rep.obj, seen: rep.seen})
}

func (h *pruneHistory) deliver(i, to int) {
	m := h.pool[i]
	h.pool = slices.Delete(h.pool, i, i+1)
	dst := h.replicas[to]
	dst.obj = Sync(dst.obj, m.obj)
	dst.seen = dst.seen.union(m.seen)
}

// mayPrune is the rule: every copy of the key, on a replica or in flight,
// equals every other. It returns the common object.
func (h *pruneHistory) mayPrune() (Object, bool) {
	first := h.replicas[0].obj
	for _, rep := range h.replicas[1:] {
		if !rep.obj.Equal(first) {
			return Object{}, false
		}
	}
	for _, m := range h.pool {
		if !m.obj.Equal(first) {
			return Object{}, false
		}
	}
	return first, true
}

// prune drops the prunable entries from the replicas in which, the
// others (a prune that reached only some replicas) keeping theirs.
func (h *pruneHistory) prune(which []bool) {
	obj, ok := h.mayPrune()
	if !ok {
		return
	}
	actors := obj.Prunable(h.retired)
	for r, rep := range h.replicas {
		if !which[r] {
			continue
		}
		next, n := rep.obj.Prune(actors)
		if n != len(actors) {
			panic(fmt.Sprintf("pruned %d of %v from %s", n, actors, describe(rep.obj)))
		}
		rep.obj = next
	}
	for _, a := range actors {
		h.pruned[a] = true
	}
	h.prunes++
}

// coordinate is the coordinator's rule with pruning (node/coord): a
// context still ahead of the copy after catching up is refused by a
// primary, unless every actor it is ahead in is retired and unknown to
// the copy (pruned): then it is clamped, as a fallback clamps.
func (h *pruneHistory) coordinate(r int, ctx *clientContext, reachable []int, tombstone bool) (int, outcome) {
	rep := h.replicas[r]
	var vv VV
	if ctx != nil {
		vv = ctx.vv
	}
	out := within
	if _, ahead := vv.Exceeds(rep.obj.VV); ahead {
		out = caughtUp
		for _, q := range reachable {
			if q != r {
				h.sync(q, r, false)
			}
		}
		if _, ahead := vv.Exceeds(rep.obj.VV); ahead {
			for a, c := range vv {
				if c > rep.obj.VV[a] && (rep.obj.VV[a] > 0 || !h.retired(a)) {
					return -1, refused
				}
			}
			vv, out = vv.Clamp(rep.obj.VV), clamped
		}
	}
	replaces := writeSet{}
	for w := range rep.seen {
		if vv.Covers(h.writes[w].dot) {
			replaces[w] = struct{}{}
		}
	}
	return h.apply(r, vv, replaces, tombstone), out
}

// check compares replica r with the model: its siblings exactly, its
// vector up to pruned entries.
func (h *pruneHistory) check(r int) error {
	rep := h.replicas[r]
	if err := rep.obj.Validate(); err != nil {
		return fmt.Errorf("%s breaks the dot rules: %w: %s", rep.name, err, describe(rep.obj))
	}
	want := h.expected(rep.seen)
	got := canonical(rep.obj)
	if !reflect.DeepEqual(got.Siblings, want.Siblings) {
		gotIDs, wantIDs := writeIDs(got), writeIDs(want)
		return fmt.Errorf("%s differs from the model: lost writes %v, replaced writes back %v\n  got  %s\n  want %s",
			rep.name, setMinus(wantIDs, gotIDs), setMinus(gotIDs, wantIDs), describe(got), describe(want))
	}
	for _, a := range slices.Sorted(maps.Keys(want.VV)) {
		if n := got.VV[a]; n != want.VV[a] && (n != 0 || !h.pruned[a]) {
			return fmt.Errorf("%s has %s:%d in its vector, the model %s:%d: %s", rep.name, a, n, a, want.VV[a], describe(got))
		}
	}
	for a := range got.VV {
		if _, ok := want.VV[a]; !ok {
			return fmt.Errorf("%s names actor %s the model never saw: %s", rep.name, a, describe(got))
		}
	}
	return nil
}

func (h *pruneHistory) run(t *rapid.T) {
	replica := rapid.IntRange(0, len(h.replicas)-1)
	which := rapid.SliceOfN(rapid.Bool(), len(h.replicas), len(h.replicas))
	t.Repeat(map[string]func(*rapid.T){
		"put": func(t *rapid.T) {
			r := replica.Draw(t, "coordinator")
			ctx := drawContext(t, h.cluster, replica)
			var reachable []int
			for q := range h.replicas {
				if q != r && rapid.Bool().Draw(t, fmt.Sprintf("reaches %d", q)) {
					reachable = append(reachable, q)
				}
			}
			h.coordinate(r, ctx, reachable, rapid.IntRange(0, 4).Draw(t, "delete") == 0)
		},
		"read":    func(t *rapid.T) { h.read(drawReadSet(t, h.cluster, replica)...) },
		"restart": func(t *rapid.T) { h.restart(replica.Draw(t, "restarted")) },
		"send":    func(t *rapid.T) { h.send(replica.Draw(t, "sender")) },
		"deliver": func(t *rapid.T) {
			if len(h.pool) == 0 {
				t.Skip("nothing in flight")
			}
			h.deliver(rapid.IntRange(0, len(h.pool)-1).Draw(t, "message"), replica.Draw(t, "to"))
		},
		"sync": func(t *rapid.T) {
			from, to := replica.Draw(t, "from"), replica.Draw(t, "to")
			if from == to {
				t.Skip("a replica does not sync with itself")
			}
			h.sync(from, to, rapid.Bool().Draw(t, "swap"))
		},
		"settle": func(t *rapid.T) {
			// An anti-entropy round: the replicas agree, so a prune may
			// follow unless a copy is still in flight.
			h.syncAll(rapid.Permutation(h.pairs()).Draw(t, "anti-entropy order"))
		},
		"prune": func(t *rapid.T) { h.prune(which.Draw(t, "pruned replicas")) },
		"": func(t *rapid.T) {
			for r := range h.replicas {
				if err := h.check(r); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

// TestPruningLosesNothingAndResurrectsNothing: with prunes under the rule
// interleaved anywhere in a history, every replica holds exactly the
// writes the model says after every step; once every message has arrived
// and every replica heard from every other, a prune leaves no retired
// actor in any vector except those a sibling names.
func TestPruningLosesNothingAndResurrectsNothing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := &pruneHistory{cluster: drawCluster(t), pruned: map[string]bool{}}
		h.run(t)
		for len(h.pool) > 0 {
			h.deliver(0, rapid.IntRange(0, len(h.replicas)-1).Draw(t, "late delivery to"))
		}
		h.syncAll(rapid.Permutation(h.pairs()).Draw(t, "anti-entropy order"))
		all := make([]bool, len(h.replicas))
		for r := range all {
			all[r] = true
		}
		h.prune(all)
		all2 := writeSet{}
		for id := range h.writes {
			all2[id] = struct{}{}
		}
		maximal := h.survivors(all2)
		for r, rep := range h.replicas {
			if err := h.check(r); err != nil {
				t.Fatal(err)
			}
			if got := writeIDs(rep.obj); !reflect.DeepEqual(got, maximal) {
				t.Fatalf("%s holds writes %v, want the uncovered writes %v", rep.name, got.sorted(), maximal.sorted())
			}
			if !rep.obj.Equal(h.replicas[0].obj) {
				t.Fatalf("after a full sync and a prune %s = %s but %s = %s", rep.name, describe(rep.obj), h.replicas[0].name, describe(h.replicas[0].obj))
			}
			for a := range rep.obj.VV {
				if h.retired(a) && !rep.obj.names(a) {
					t.Fatalf("%s still names retired actor %s after a prune: %s", rep.name, a, describe(rep.obj))
				}
			}
		}
	})
}

// TestPruningWithoutTheRuleResurrects shows what the rule prevents, as
// Riak's vclock pruning does not: a replica prunes a retired actor while a
// copy holding one of its replaced writes is still on its way (a hint, a
// slow replica put), and the replaced write comes back.
func TestPruningWithoutTheRuleResurrects(t *testing.T) {
	h := &pruneHistory{cluster: newCluster(2), pruned: map[string]bool{}}
	old := h.put(0, nil, false) // r0.0:1
	h.sync(0, 1, false)
	h.send(1) // a copy holding the old write leaves r1 and is delayed
	h.restart(0)
	ctx := h.read(0, 1)
	h.coordinate(1, &ctx, nil, false) // replaces the old write
	h.sync(1, 0, false)
	if _, ok := h.mayPrune(); ok {
		t.Fatal("the rule allows a prune while a copy with a replaced write is in flight")
	}
	actors := h.replicas[0].obj.Prunable(h.retired)
	if !slices.Equal(actors, []string{"r0.0"}) {
		t.Fatalf("prunable %v, want [r0.0]", actors)
	}
	for _, rep := range h.replicas {
		rep.obj, _ = rep.obj.Prune(actors)
	}
	h.deliver(0, 0)
	if !writeIDs(h.replicas[0].obj).has(old) {
		t.Fatalf("expected the replaced write %d back after the unsafe prune, got %s", old, describe(h.replicas[0].obj))
	}
}

// TestPruneKeepsWhatSiblingsName: an entry a sibling names stays, or the
// sibling would not be covered by its own vector.
func TestPruneKeepsWhatSiblingsName(t *testing.T) {
	o := Object{
		Siblings: []Sibling{{Dot: Dot{Actor: "a", Counter: 2}, Value: []byte("x")}},
		VV:       VV{"a": 2, "b": 5, "c": 1},
	}
	retired := func(string) bool { return true }
	if got := o.Prunable(retired); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("prunable %v, want [b c]", got)
	}
	p, n := o.Prune([]string{"a", "b", "c", "d"})
	if n != 2 || !p.VV.Equal(VV{"a": 2}) || p.Validate() != nil {
		t.Fatalf("pruned %d: %s", n, describe(p))
	}
	if !o.VV.Equal(VV{"a": 2, "b": 5, "c": 1}) {
		t.Fatalf("Prune changed its input: %s", describe(o))
	}
}
