package dvv

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// lwwEqual compares objects field for field: the same vector (zero entries
// ignored) and the same siblings, values and times included.
func lwwEqual(a, b Object) bool {
	if !a.VV.Equal(b.VV) || len(a.Siblings) != len(b.Siblings) {
		return false
	}
	return len(a.Siblings) == 0 || reflect.DeepEqual(a.Siblings, b.Siblings)
}

// drawObject draws any valid object over a few actors, with times and
// values from small ranges so that ties between siblings are common.
func drawObject(t *rapid.T, label string) Object {
	actors := []string{"a", "b", "c"}
	o := Object{VV: VV{}}
	for _, a := range actors {
		if c := rapid.Uint64Range(0, 4).Draw(t, label+" vv "+a); c > 0 {
			o.VV[a] = c
		}
	}
	seen := map[Dot]bool{}
	for range rapid.IntRange(0, 3).Draw(t, label+" siblings") {
		a := rapid.SampledFrom(actors).Draw(t, label+" actor")
		if o.VV[a] == 0 {
			continue
		}
		d := Dot{Actor: a, Counter: rapid.Uint64Range(1, o.VV[a]).Draw(t, label+" counter")}
		if seen[d] {
			continue
		}
		seen[d] = true
		o.Siblings = append(o.Siblings, Sibling{Dot: d,
			Value:     []byte(rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, label+" value")),
			Tombstone: rapid.IntRange(0, 3).Draw(t, label+" tombstone") == 0,
			WrittenAt: rapid.Int64Range(0, 5).Draw(t, label+" written at")})
	}
	return normalize(o)
}

// TestSyncLWWAlgebra: on any valid objects, SyncLWW is commutative,
// associative and idempotent, keeps the Later of all siblings of both
// copies and the join of their vectors, leaves a valid object, and
// LWW.Descends says exactly when it changes nothing.
func TestSyncLWWAlgebra(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawObject(t, "a"), drawObject(t, "b"), drawObject(t, "c")
		ab, ba := SyncLWW(a, b), SyncLWW(b, a)
		if !lwwEqual(ab, ba) {
			t.Fatalf("not commutative:\n a %+v\n b %+v\n ab %+v\n ba %+v", a, b, ab, ba)
		}
		if l, r := SyncLWW(ab, c), SyncLWW(a, SyncLWW(b, c)); !lwwEqual(l, r) {
			t.Fatalf("not associative:\n (ab)c %+v\n a(bc) %+v", l, r)
		}
		ra := LWW.Resolve(a)
		if aa := SyncLWW(a, a); !lwwEqual(aa, ra) {
			t.Fatalf("SyncLWW(a, a) = %+v, want a resolved = %+v", aa, ra)
		}
		if rr := SyncLWW(ra, ra); !lwwEqual(rr, ra) {
			t.Fatalf("not idempotent on a resolved object: %+v then %+v", ra, rr)
		}
		if !ab.VV.Equal(a.VV.Merge(b.VV)) {
			t.Fatalf("vector %v, want the join of %v and %v", ab.VV, a.VV, b.VV)
		}
		all := slices.Concat(a.Siblings, b.Siblings)
		switch {
		case len(all) == 0 && len(ab.Siblings) != 0:
			t.Fatalf("siblings from nowhere: %+v", ab)
		case len(all) > 0 && len(ab.Siblings) != 1:
			t.Fatalf("want one sibling, got %+v", ab.Siblings)
		}
		for _, s := range all {
			if Later(s, ab.Siblings[0]) {
				t.Fatalf("kept %+v, but %+v is later", ab.Siblings[0], s)
			}
		}
		if len(all) > 0 && !slices.ContainsFunc(all, func(s Sibling) bool { return reflect.DeepEqual(s, ab.Siblings[0]) }) {
			t.Fatalf("kept %+v, which neither copy held", ab.Siblings[0])
		}
		if err := ab.Validate(); err != nil {
			t.Fatalf("SyncLWW of valid objects is invalid: %v", err)
		}
		if got, want := LWW.Descends(a, b), lwwEqual(ab, a); got != want {
			t.Fatalf("LWW.Descends(a, b) = %v, but SyncLWW(a, b) equal to a = %v:\n a %+v\n b %+v", got, want, a, b)
		}
		if got, want := LWW.Sync(a, b), ab; !lwwEqual(got, want) {
			t.Fatalf("LWW.Sync differs from SyncLWW")
		}
		if got, want := Siblings.Sync(a, b), Sync(a, b); !reflect.DeepEqual(got, want) {
			t.Fatalf("Siblings.Sync differs from Sync")
		}
	})
}

// TestLaterIsATotalOrder: Later orders any two distinct siblings one way
// and no sibling before itself, by time first and dot second.
func TestLaterIsATotalOrder(t *testing.T) {
	early := Sibling{Dot: Dot{Actor: "z", Counter: 9}, WrittenAt: 10}
	late := Sibling{Dot: Dot{Actor: "a", Counter: 1}, WrittenAt: 11}
	if !Later(late, early) || Later(early, late) {
		t.Fatal("time decides before the dot")
	}
	tie := Sibling{Dot: Dot{Actor: "b", Counter: 1}, WrittenAt: 11}
	if !Later(tie, late) || Later(late, tie) {
		t.Fatal("the dot breaks a tie of times")
	}
	if Later(late, late) {
		t.Fatal("a sibling is not later than itself")
	}
	rapid.Check(t, func(t *rapid.T) {
		x, y := drawObject(t, "x"), drawObject(t, "y")
		for _, a := range x.Siblings {
			for _, b := range y.Siblings {
				if reflect.DeepEqual(a, b) != (!Later(a, b) && !Later(b, a)) {
					t.Fatalf("Later does not order %+v and %+v one way", a, b)
				}
			}
		}
	})
}

// lwwCluster simulates one key of a last-write-wins bucket on a few
// replicas whose clocks disagree: each coordinates writes with its own
// hybrid logical clock (as node's replicaSet does), and copies meet by
// SyncLWW. Next to the objects runs a model that knows every write's
// stamp and which writes each replica and each read has seen.
type lwwCluster struct {
	now      int64 // the true time
	replicas []*lwwReplica
	writes   []lwwWrite
	reads    []lwwRead
}

type lwwReplica struct {
	actor string
	skew  int64 // its clock reads now + skew
	last  int64 // its clock's last tick
	obj   Object
	seen  map[int]bool
}

type lwwWrite struct {
	sib Sibling
	// after holds the writes the client's read had seen: this write
	// causally follows them.
	after map[int]bool
}

type lwwRead struct {
	vv    VV
	stamp int64
	seen  map[int]bool
}

// put coordinates a write at replica r with the context of read (nil for
// none): the clock ticks past its last tick, then past everything the
// copy holds and the context's stamp. A context naming writes the copy
// has not seen is clamped, as a fallback does (the case where the copy
// cannot know what the client read, so only the stamp can carry it).
func (c *lwwCluster) put(t *rapid.T, r int, read *lwwRead, value string, tombstone bool) {
	rep := c.replicas[r]
	tick := max(c.now+rep.skew, rep.last+1)
	rep.last = tick
	ts := max(tick, rep.obj.Stamp()+1)
	var ctx VV
	after := map[int]bool{}
	if read != nil {
		ts = max(ts, read.stamp+1)
		ctx = read.vv.Clamp(rep.obj.VV)
		after = read.seen
	}
	next, err := rep.obj.Update(ctx, rep.actor, []byte(value), tombstone, ts)
	if err != nil {
		t.Fatal(err)
	}
	rep.obj = LWW.Resolve(next)
	id := len(c.writes)
	c.writes = append(c.writes, lwwWrite{sib: rep.obj.Siblings[0], after: after})
	rep.seen = maps.Clone(rep.seen)
	rep.seen[id] = true
	for prev := range after {
		if !Later(c.writes[id].sib, c.writes[prev].sib) {
			t.Fatalf("write %d (%+v) follows write %d (%+v) but is not later", id, c.writes[id].sib, prev, c.writes[prev].sib)
		}
	}
}

// read merges the copies of the replicas asked, as a coordinator does,
// and keeps the context a client would get: the vector and the stamp.
func (c *lwwCluster) read(rs ...int) lwwRead {
	var merged Object
	seen := map[int]bool{}
	for _, r := range rs {
		merged = SyncLWW(merged, c.replicas[r].obj)
		maps.Copy(seen, c.replicas[r].seen)
	}
	rd := lwwRead{vv: merged.VV, stamp: merged.Stamp(), seen: seen}
	c.reads = append(c.reads, rd)
	return rd
}

func (c *lwwCluster) sync(from, to int) {
	f, d := c.replicas[from], c.replicas[to]
	d.obj = SyncLWW(d.obj, f.obj)
	d.seen = maps.Clone(d.seen)
	maps.Copy(d.seen, f.seen)
}

// check demands that replica r hold the model's object: the latest of the
// writes it has seen, and a vector of the highest dot of each actor among
// them.
func (c *lwwCluster) check(r int) error {
	rep := c.replicas[r]
	want := Object{VV: VV{}}
	for id := range rep.seen {
		s := c.writes[id].sib
		want.VV[s.Dot.Actor] = max(want.VV[s.Dot.Actor], s.Dot.Counter)
		if len(want.Siblings) == 0 || Later(s, want.Siblings[0]) {
			want.Siblings = []Sibling{s}
		}
	}
	if !lwwEqual(rep.obj, want) {
		return fmt.Errorf("replica %s holds %+v, the model %+v", rep.actor, rep.obj, want)
	}
	return rep.obj.Validate()
}

// TestLWWHistories: replicas with clocks far apart take writes with
// contexts from fresh and stale reads and sync in random orders. At every
// step each replica holds the latest write it has seen; a write made with
// a read's context is later than everything that read saw, whichever
// clock stamped it; and once all replicas have exchanged, they hold the
// same object: the latest write of all, one that no later write's
// context had seen.
func TestLWWHistories(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := &lwwCluster{now: 1000}
		for i := range rapid.IntRange(2, 4).Draw(t, "replicas") {
			c.replicas = append(c.replicas, &lwwReplica{actor: fmt.Sprintf("n%d", i),
				skew: rapid.Int64Range(-500, 500).Draw(t, "skew"), seen: map[int]bool{}})
		}
		replica := rapid.IntRange(0, len(c.replicas)-1)
		t.Repeat(map[string]func(*rapid.T){
			"tick": func(t *rapid.T) { c.now += rapid.Int64Range(0, 20).Draw(t, "elapsed") },
			"put": func(t *rapid.T) {
				var rd *lwwRead
				switch rapid.IntRange(0, 2).Draw(t, "context") {
				case 1:
					r := c.read(replica.Draw(t, "read from"), replica.Draw(t, "also read from"))
					rd = &r
				case 2:
					if len(c.reads) > 0 {
						rd = &c.reads[rapid.IntRange(0, len(c.reads)-1).Draw(t, "stale read")]
					}
				}
				c.put(t, replica.Draw(t, "coordinator"), rd,
					rapid.SampledFrom([]string{"x", "y"}).Draw(t, "value"), rapid.IntRange(0, 4).Draw(t, "delete") == 0)
			},
			"sync": func(t *rapid.T) {
				from, to := replica.Draw(t, "from"), replica.Draw(t, "to")
				c.sync(from, to)
			},
			"": func(t *rapid.T) {
				for r := range c.replicas {
					if err := c.check(r); err != nil {
						t.Fatal(err)
					}
				}
			},
		})
		for r := range c.replicas {
			c.sync(r, 0)
		}
		for r := range c.replicas {
			c.sync(0, r)
		}
		if len(c.writes) == 0 {
			return
		}
		var last int
		for id, w := range c.writes {
			if Later(w.sib, c.writes[last].sib) {
				last = id
			}
		}
		for r, rep := range c.replicas {
			if err := c.check(r); err != nil {
				t.Fatal(err)
			}
			if !lwwEqual(rep.obj, c.replicas[0].obj) {
				t.Fatalf("after a full exchange %s = %+v, %s = %+v", rep.actor, rep.obj, c.replicas[0].actor, c.replicas[0].obj)
			}
			if !reflect.DeepEqual(rep.obj.Siblings, []Sibling{c.writes[last].sib}) {
				t.Fatalf("%s kept %+v, not the latest write %+v", rep.actor, rep.obj.Siblings, c.writes[last].sib)
			}
		}
		for id, w := range c.writes {
			if w.after[last] {
				t.Fatalf("write %d followed the surviving write %d, yet lost to it", id, last)
			}
		}
	})
}
