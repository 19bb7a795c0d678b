package dvv

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// The properties below run on histories: a few replicas of one key take
// writes with contexts from earlier (often stale) reads, sync with each other
// in random orders and, in the kv679 property, lose their data. After every
// step each replica must equal the model of history_test.go.

// runHistory drives a random history on c. With wipes, replicas may lose
// their data and come back under a new actor id.
func runHistory(t *rapid.T, c *cluster, wipes bool) {
	replica := rapid.IntRange(0, len(c.replicas)-1)
	repeatHistory(t, c, replica, wipes, func(t *rapid.T) {
		r := replica.Draw(t, "coordinator")
		ctx := drawContext(t, c, replica)
		c.put(r, ctx, rapid.IntRange(0, 4).Draw(t, "delete") == 0)
	})
}

// repeatHistory runs put, reads, syncs and (with wipes) wipes on c in a
// random order, checking every replica against the model after each.
func repeatHistory(t *rapid.T, c *cluster, replica *rapid.Generator[int], wipes bool, put func(*rapid.T)) {
	actions := map[string]func(*rapid.T){
		"put": put,
		"read": func(t *rapid.T) {
			c.read(drawReadSet(t, c, replica)...)
		},
		"sync": func(t *rapid.T) {
			from, to := replica.Draw(t, "from"), replica.Draw(t, "to")
			if from == to {
				t.Skip("a replica does not sync with itself")
			}
			c.sync(from, to, rapid.Bool().Draw(t, "swap"))
		},
		"": func(t *rapid.T) {
			for r := range c.replicas {
				if err := c.check(r); err != nil {
					t.Fatal(err)
				}
			}
		},
	}
	if wipes {
		actions["wipe"] = func(t *rapid.T) { c.wipe(replica.Draw(t, "wiped")) }
	}
	t.Repeat(actions)
}

// drawContext picks what a client sends with a put: nothing, the context of
// a read made now, or one from an earlier read, however stale.
func drawContext(t *rapid.T, c *cluster, replica *rapid.Generator[int]) *clientContext {
	switch rapid.IntRange(0, 2).Draw(t, "context") {
	case 0:
		return nil
	case 1:
		ctx := c.read(drawReadSet(t, c, replica)...)
		return &ctx
	}
	if len(c.contexts) == 0 {
		return nil
	}
	ctx := c.contexts[rapid.IntRange(0, len(c.contexts)-1).Draw(t, "stale read")]
	return &ctx
}

// drawReadSet picks the replicas a read asks: one, or two whose answers the
// coordinator merges.
func drawReadSet(t *rapid.T, c *cluster, replica *rapid.Generator[int]) []int {
	rs := []int{replica.Draw(t, "read from")}
	if rapid.Bool().Draw(t, "quorum read") {
		rs = append(rs, replica.Draw(t, "also read from"))
	}
	return rs
}

func drawCluster(t *rapid.T) *cluster {
	return newCluster(rapid.IntRange(2, 4).Draw(t, "replicas"))
}

// TestSyncAlgebra checks that Sync is commutative, associative and
// idempotent, and that Descends and Equal agree with it and with the model,
// on objects taken from histories at random points (so mostly stale ones).
func TestSyncAlgebra(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawCluster(t)
		runHistory(t, c, rapid.Bool().Draw(t, "wipes"))
		// The empty object is reachable too: a replica that never heard of
		// the key.
		c.snaps = append(c.snaps, snapshot{seen: writeSet{}})
		snap := rapid.IntRange(0, len(c.snaps)-1)
		for range 20 {
			a := c.snaps[snap.Draw(t, "a")]
			b := c.snaps[snap.Draw(t, "b")]
			x := c.snaps[snap.Draw(t, "c")]
			checkSyncLaws(t, c, a, b, x)
		}
		for i, s := range c.snaps {
			if !reflect.DeepEqual(s.obj, s.frozen) {
				t.Fatalf("snapshot %d changed after it was taken: now %s, was %s", i, describe(s.obj), describe(s.frozen))
			}
		}
	})
}

func checkSyncLaws(t *rapid.T, c *cluster, a, b, x snapshot) {
	ab, ba := Sync(a.obj, b.obj), Sync(b.obj, a.obj)
	if !ab.Equal(ba) || !reflect.DeepEqual(canonical(ab), canonical(ba)) {
		t.Fatalf("Sync is not commutative:\n  a      %s\n  b      %s\n  Sync(a,b) %s\n  Sync(b,a) %s",
			describe(a.obj), describe(b.obj), describe(ab), describe(ba))
	}
	if err := c.compare("Sync(a, b)", ab, a.seen.union(b.seen)); err != nil {
		t.Fatal(err)
	}

	left, right := Sync(ab, x.obj), Sync(a.obj, Sync(b.obj, x.obj))
	if !left.Equal(right) || !reflect.DeepEqual(canonical(left), canonical(right)) {
		t.Fatalf("Sync is not associative:\n  a %s\n  b %s\n  c %s\n  (ab)c %s\n  a(bc) %s",
			describe(a.obj), describe(b.obj), describe(x.obj), describe(left), describe(right))
	}

	aa := Sync(a.obj, a.obj)
	if !aa.Equal(a.obj) || !reflect.DeepEqual(canonical(aa), canonical(a.obj)) {
		t.Fatalf("Sync is not idempotent: Sync(a, a) = %s, a = %s", describe(aa), describe(a.obj))
	}

	if !ab.Descends(a.obj) || !ab.Descends(b.obj) {
		t.Fatalf("Sync(a, b) = %s does not descend both a = %s and b = %s", describe(ab), describe(a.obj), describe(b.obj))
	}
	descends := a.obj.Descends(b.obj)
	if absorbs := ab.Equal(a.obj); descends != absorbs {
		t.Fatalf("a.Descends(b) = %v but Sync(a, b).Equal(a) = %v:\n  a %s\n  b %s", descends, absorbs, describe(a.obj), describe(b.obj))
	}
	// The model's reading of Descends: a has seen every write b has.
	if saw := b.seen.subsetOf(a.seen); descends != saw {
		t.Fatalf("a.Descends(b) = %v but a has seen all of b's writes = %v:\n  a %s\n  b %s", descends, saw, describe(a.obj), describe(b.obj))
	}
	same := a.seen.subsetOf(b.seen) && b.seen.subsetOf(a.seen)
	if eq := a.obj.Equal(b.obj); eq != same {
		t.Fatalf("a.Equal(b) = %v but a and b have seen the same writes = %v:\n  a %s\n  b %s", eq, same, describe(a.obj), describe(b.obj))
	}
}

// TestNoLostWrites: whatever the order of writes, reads and syncs, once every
// replica has heard from every other, each holds exactly the writes that no
// write's context covered, and nothing else.
func TestNoLostWrites(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawCluster(t)
		runHistory(t, c, false)
		c.syncAll(rapid.Permutation(c.pairs()).Draw(t, "anti-entropy order"))

		all := writeSet{}
		for id := range c.writes {
			all[id] = struct{}{}
		}
		maximal := c.survivors(all)
		for r, rep := range c.replicas {
			if err := c.check(r); err != nil {
				t.Fatal(err)
			}
			if got := writeIDs(rep.obj); !reflect.DeepEqual(got, maximal) {
				t.Fatalf("%s holds writes %v, want the uncovered writes %v", rep.name, got.sorted(), maximal.sorted())
			}
			if got, want := liveIDs(rep.obj), liveWrites(c, maximal); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s reads writes %v, want %v", rep.name, got.sorted(), want.sorted())
			}
			if first := c.replicas[0].obj; !rep.obj.Equal(first) {
				t.Fatalf("after full sync %s = %s but %s = %s", rep.name, describe(rep.obj), c.replicas[0].name, describe(first))
			}
		}
	})
}

// TestNoLostWritesAcrossWipes is kv679: replicas lose their data and come
// back under a new actor id, then coordinate writes, with or without contexts
// read elsewhere. Every write made after the last wipe that no context
// covered must be on every replica once all have synced.
func TestNoLostWritesAcrossWipes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawCluster(t)
		runHistory(t, c, true)
		// However the history went, end it with a wipe and a history
		// without one, so every run has writes made after the last wipe
		// for the final check to look for.
		c.wipe(rapid.IntRange(0, len(c.replicas)-1).Draw(t, "last wiped"))
		runHistory(t, c, false)
		c.syncAll(rapid.Permutation(c.pairs()).Draw(t, "anti-entropy order"))

		replaced := writeSet{}
		for _, w := range c.writes {
			replaced = replaced.union(w.replaces)
		}
		for r, rep := range c.replicas {
			if err := c.check(r); err != nil {
				t.Fatal(err)
			}
			held := writeIDs(rep.obj)
			for id := c.writesBeforeLastWipe; id < len(c.writes); id++ {
				if !replaced.has(id) && !held.has(id) {
					t.Fatalf("write %d, made after the last wipe and never replaced, is missing from %s = %s",
						id, rep.name, describe(rep.obj))
				}
			}
		}
	})
}

func liveIDs(o Object) writeSet { return writeIDs(Object{Siblings: o.Live()}) }

func liveWrites(c *cluster, ids writeSet) writeSet {
	out := writeSet{}
	for id := range ids {
		if !c.writes[id].tombstone {
			out[id] = struct{}{}
		}
	}
	return out
}

// The property below gives clients the power to forge: actor names are in
// every context a read returns, so a client may send any vector at all,
// naming actors that exist or not, with counters up to 2^64-1. The
// coordinator's rule (coordinate) must make that harmless: no acknowledged
// write disappears unless a write superseded it whose context covered it
// and named nothing beyond what the coordinator's copy had seen, which is
// what reading the key gives anyone.

// runAdversarialHistory drives a history whose puts go through the
// coordinator's rule, with contexts that are absent, read now, stale, or
// forged, each coordinated by a replica that reaches some of the others and
// acts as a primary (refuses) or a fallback (clamps).
func runAdversarialHistory(t *rapid.T, c *cluster, wipes bool) {
	replica := rapid.IntRange(0, len(c.replicas)-1)
	repeatHistory(t, c, replica, wipes, func(t *rapid.T) {
		r := replica.Draw(t, "coordinator")
		var ctx *clientContext
		switch rapid.IntRange(0, 3).Draw(t, "context") {
		case 0, 1:
			ctx = drawContext(t, c, replica)
		default:
			ctx = drawForged(t, c)
		}
		var reachable []int
		for q := range c.replicas {
			if q != r && rapid.Bool().Draw(t, fmt.Sprintf("reaches %d", q)) {
				reachable = append(reachable, q)
			}
		}
		fallback := rapid.Bool().Draw(t, "fallback")
		minted := c.minted()
		id, vv, out := c.coordinate(r, ctx, reachable, fallback, rapid.IntRange(0, 4).Draw(t, "delete") == 0)
		checkDecision(t, c, r, ctx, reachable, minted, id, vv, out)
	})
}

// drawForged makes up a context: from nothing or from a real read, with a
// few entries set to counters small or huge, for actors that exist or not.
func drawForged(t *rapid.T, c *cluster) *clientContext {
	vv := VV{}
	if len(c.contexts) > 0 && rapid.Bool().Draw(t, "forge from a read") {
		vv = c.contexts[rapid.IntRange(0, len(c.contexts)-1).Draw(t, "forged read")].vv.Clone()
	}
	actors := append(c.actors(), "zz.0")
	minted := c.minted()
	for range rapid.IntRange(1, 3).Draw(t, "forged entries") {
		a := rapid.SampledFrom(actors).Draw(t, "forged actor")
		vv[a] = rapid.OneOf(
			rapid.Uint64Range(0, minted[a]+2),
			rapid.SampledFrom([]uint64{1 << 40, MaxCounter - 1, MaxCounter, 1 << 63, math.MaxUint64}),
		).Draw(t, "forged counter")
	}
	return &clientContext{vv: vv, forged: true}
}

// checkDecision holds one coordinated write to the rule's promises.
func checkDecision(t *rapid.T, c *cluster, r int, ctx *clientContext, reachable []int, minted VV, id int, vv VV, out outcome) {
	if out == refused || out == clamped {
		// A context read from replicas the coordinator can reach (or is),
		// with no wipe since, names nothing they have not seen.
		if ctx != nil && !ctx.forged && ctx.wipes == c.wipes &&
			writeSetOf(ctx.from).subsetOf(writeSetOf(reachable).with(r)) {
			t.Fatalf("a context read from %v was %s by %s reaching %v: %v", ctx.from, out, c.replicas[r].name, reachable, ctx.vv)
		}
		if out == refused {
			if id != -1 {
				t.Fatalf("a refused write was given id %d", id)
			}
			return
		}
	}
	if a, ahead := vv.Exceeds(minted); ahead {
		t.Fatalf("%s minted with a context naming %s:%d, beyond anything minted (%d)", c.replicas[r].name, a, vv[a], minted[a])
	}
	if d := c.writes[id].dot; d.Counter == 0 || d.Counter != minted[d.Actor]+1 {
		t.Fatalf("write %d got dot %s:%d; %s had minted up to %d", id, d.Actor, d.Counter, d.Actor, minted[d.Actor])
	}
	// Accepted as it was sent, a context obtained by reading replaces
	// exactly the writes that read saw.
	if ctx != nil && !ctx.forged && out != clamped {
		if got := c.writes[id].replaces; !got.subsetOf(ctx.seen) || !ctx.seen.subsetOf(got) {
			t.Fatalf("write %d with a read's context replaces %v, the read saw %v", id, got.sorted(), ctx.seen.sorted())
		}
	}
}

// writeSetOf is a set of replica indexes, to compare with subsetOf.
func writeSetOf(ids []int) writeSet { return writeSet{}.with(ids...) }

// TestNoLostWritesWithForgedContexts: whatever contexts clients send, every
// replica equals the model after every step, so writes disappear only as
// their replacements' contexts allow, and every forged context names
// nothing beyond what was minted once accepted. Without wipes, once every
// replica has heard from every other, each holds exactly the writes no
// accepted write's context covered: every acknowledged write that nothing
// superseded is there.
func TestNoLostWritesWithForgedContexts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawCluster(t)
		wipes := rapid.Bool().Draw(t, "wipes")
		runAdversarialHistory(t, c, wipes)
		c.syncAll(rapid.Permutation(c.pairs()).Draw(t, "anti-entropy order"))
		all := writeSet{}
		for id := range c.writes {
			all[id] = struct{}{}
		}
		maximal := c.survivors(all)
		for r, rep := range c.replicas {
			if err := c.check(r); err != nil {
				t.Fatal(err)
			}
			if got := writeIDs(rep.obj); !wipes && !reflect.DeepEqual(got, maximal) {
				t.Fatalf("%s holds writes %v, want the uncovered writes %v", rep.name, got.sorted(), maximal.sorted())
			}
		}
	})
}
