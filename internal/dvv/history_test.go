package dvv

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// This file simulates one key replicated on a few nodes, driven write by
// write, next to a model that knows nothing of version vectors: each replica
// holds the set of writes it has seen, and a write replaces exactly the writes
// its client's context had seen. The model's object for a set S of seen
// writes is then
//
//	siblings: the writes in S that no write in S replaced
//	vector:   for each actor, the highest counter among the writes in S
//
// and the tests demand that the real Object equal it, field for field, after
// every step. Objects built this way are reachable (a history produced them),
// unlike arbitrary structs, which can give one dot two values.

// writeSet is a set of write ids (indexes into cluster.writes).
type writeSet map[int]struct{}

func (s writeSet) with(ids ...int) writeSet {
	out := maps.Clone(s)
	if out == nil {
		out = writeSet{}
	}
	for _, id := range ids {
		out[id] = struct{}{}
	}
	return out
}

func (s writeSet) union(o writeSet) writeSet {
	return s.with(slices.Collect(maps.Keys(o))...)
}

func (s writeSet) has(id int) bool { _, ok := s[id]; return ok }

func (s writeSet) subsetOf(o writeSet) bool {
	for id := range s {
		if !o.has(id) {
			return false
		}
	}
	return true
}

func (s writeSet) sorted() []int { return slices.Sorted(maps.Keys(s)) }

// modelWrite is one write as the model sees it.
type modelWrite struct {
	dot       Dot
	value     []byte
	tombstone bool
	// replaces holds the writes the client's context had seen: the only
	// writes this one may make disappear.
	replaces writeSet
}

// replica is one node's copy of the key: the real object and the model's
// set of writes it has seen.
type replica struct {
	name        string
	incarnation int
	actor       string
	obj         Object
	seen        writeSet
}

// clientContext is what a client holds after a read: the opaque vector it
// will send back, and (for the model) the writes that read had seen, the
// replicas it asked and how many wipes had happened then. A forged context
// was made up by the client: its seen set means nothing.
type clientContext struct {
	vv     VV
	seen   writeSet
	from   []int
	wipes  int
	forged bool
}

// snapshot is a copy of a replica's object at some point of a history, kept
// to feed Sync pairs of reachable, often stale, objects.
type snapshot struct {
	obj  Object
	seen writeSet
	// frozen is a deep copy taken when the snapshot was made; the object must
	// still equal it at the end, proving no operation mutated its inputs.
	frozen Object
}

// cluster is a history in progress.
type cluster struct {
	replicas []*replica
	writes   []modelWrite
	contexts []clientContext
	snaps    []snapshot
	// wipes counts the wipes so far; writesBeforeLastWipe marks where the
	// writes made after the most recent one begin.
	wipes                int
	writesBeforeLastWipe int
	// reuseActorAfterWipe breaks the incarnation rule on purpose: a wiped
	// replica comes back minting dots under its old actor id.
	reuseActorAfterWipe bool
}

func newCluster(replicas int) *cluster {
	c := &cluster{}
	for i := range replicas {
		name := fmt.Sprintf("r%d", i)
		c.replicas = append(c.replicas, &replica{name: name, actor: name + ".0", seen: writeSet{}})
	}
	return c
}

// put has replica r coordinate a write with the client's context (nil for a
// blind write) and returns the write's id. The write's value names the id,
// and so does WrittenAt, so every sibling can be traced to its write.
//
// put applies Update to whatever context it is given, as a coordinator did
// before it checked contexts against its copy: with a context read from
// other replicas it tests Update's semantics, and with a forged one (see
// kv679_test.go) it shows the writes that rule saves. coordinate applies
// the rule.
func (c *cluster) put(r int, ctx *clientContext, tombstone bool) int {
	var vv VV
	replaces := writeSet{}
	if ctx != nil {
		vv, replaces = ctx.vv, ctx.seen.with()
	}
	return c.apply(r, vv, replaces, tombstone)
}

// apply has replica r mint a write with context vv that, for the model,
// replaces the writes in replaces.
func (c *cluster) apply(r int, vv VV, replaces writeSet, tombstone bool) int {
	rep := c.replicas[r]
	id := len(c.writes)
	known := rep.seen.union(replaces)
	counter := uint64(0)
	for w := range known {
		if d := c.writes[w].dot; d.Actor == rep.actor {
			counter = max(counter, d.Counter)
		}
	}
	value := fmt.Appendf(nil, "w%d", id)
	c.writes = append(c.writes, modelWrite{
		dot:       Dot{Actor: rep.actor, Counter: counter + 1},
		value:     value,
		tombstone: tombstone,
		replaces:  replaces,
	})
	rep.obj = mustUpdate(rep.obj.Update(vv, rep.actor, value, tombstone, int64(id)))
	rep.seen = known.with(id)
	c.snap(rep)
	return id
}

// read is a client's get from the given replicas (a quorum read merges what
// they answered); the context joins the pool later puts draw stale contexts
// from.
func (c *cluster) read(rs ...int) clientContext {
	var merged Object
	seen := writeSet{}
	for _, r := range rs {
		merged = Sync(merged, c.replicas[r].obj)
		seen = seen.union(c.replicas[r].seen)
	}
	ctx := clientContext{vv: merged.VV, seen: seen, from: rs, wipes: c.wipes}
	c.contexts = append(c.contexts, ctx)
	return ctx
}

// outcome is how a coordinator's check of a context went.
type outcome int

const (
	within   outcome = iota // the context named only what the copy had seen
	caughtUp                // it did once the copy synced the reachable replicas
	clamped                 // it did not; a fallback lowered it to the copy
	refused                 // it did not; a primary refused the write
)

func (o outcome) String() string {
	return [...]string{"within", "caught up", "clamped", "refused"}[o]
}

// coordinate is put under the coordinator's rule (node/coord): a context
// that names a counter beyond what replica r's copy has seen makes r sync
// the copies of the replicas it can reach into its own; a context still
// beyond it is refused, or, when r stands in as a fallback, clamped to it.
// The write then replaces, for the model, the writes r has seen that the
// context covers. It returns the write's id (-1 when refused), the
// context the write was minted with, and what happened.
func (c *cluster) coordinate(r int, ctx *clientContext, reachable []int, fallback, tombstone bool) (int, VV, outcome) {
	rep := c.replicas[r]
	var vv VV
	if ctx != nil {
		vv = ctx.vv
	}
	out := within
	if _, ahead := vv.Exceeds(rep.obj.VV); ahead {
		out = caughtUp
		for _, q := range reachable {
			if q != r {
				c.sync(q, r, false)
			}
		}
		if _, ahead := vv.Exceeds(rep.obj.VV); ahead {
			if !fallback {
				return -1, nil, refused
			}
			vv, out = vv.Clamp(rep.obj.VV), clamped
		}
	}
	replaces := writeSet{}
	for w := range rep.seen {
		if vv.Covers(c.writes[w].dot) {
			replaces[w] = struct{}{}
		}
	}
	return c.apply(r, vv, replaces, tombstone), vv, out
}

// minted is the vector of every dot minted so far: what the cluster as a
// whole has seen.
func (c *cluster) minted() VV {
	vv := VV{}
	for _, w := range c.writes {
		vv[w.dot.Actor] = max(vv[w.dot.Actor], w.dot.Counter)
	}
	return vv
}

// actors lists every actor that minted a write or may mint one next.
func (c *cluster) actors() []string {
	set := map[string]bool{}
	for _, w := range c.writes {
		set[w.dot.Actor] = true
	}
	for _, rep := range c.replicas {
		set[rep.actor] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// sync has replica to receive replica from's object, as replication, read
// repair, handoff and anti-entropy do. Which side is Sync's first argument
// must not matter; swap says which.
func (c *cluster) sync(from, to int, swap bool) {
	src, dst := c.replicas[from], c.replicas[to]
	if swap {
		dst.obj = Sync(src.obj, dst.obj)
	} else {
		dst.obj = Sync(dst.obj, src.obj)
	}
	dst.seen = dst.seen.union(src.seen)
	c.snap(dst)
}

// syncAll has every replica receive from every other, in the given order of
// ordered pairs; any order of all pairs spreads every write everywhere.
func (c *cluster) syncAll(order [][2]int) {
	for i, p := range order {
		c.sync(p[0], p[1], i%2 == 1)
	}
}

// pairs lists every ordered pair of distinct replicas.
func (c *cluster) pairs() [][2]int {
	var out [][2]int
	for i := range c.replicas {
		for j := range c.replicas {
			if i != j {
				out = append(out, [2]int{i, j})
			}
		}
	}
	return out
}

// wipe loses replica r's data, as a fresh data directory does. By the
// incarnation rule the replica comes back under a new actor id.
func (c *cluster) wipe(r int) {
	rep := c.replicas[r]
	rep.obj, rep.seen = Object{}, writeSet{}
	if !c.reuseActorAfterWipe {
		rep.incarnation++
		rep.actor = fmt.Sprintf("%s.%d", rep.name, rep.incarnation)
	}
	c.wipes++
	c.writesBeforeLastWipe = len(c.writes)
}

func (c *cluster) snap(rep *replica) {
	c.snaps = append(c.snaps, snapshot{obj: rep.obj, seen: rep.seen, frozen: deepCopy(rep.obj)})
}

// survivors returns the writes in seen that no write in seen replaced.
func (c *cluster) survivors(seen writeSet) writeSet {
	out := writeSet{}
	for w := range seen {
		replaced := false
		for x := range seen {
			if c.writes[x].replaces.has(w) {
				replaced = true
				break
			}
		}
		if !replaced {
			out[w] = struct{}{}
		}
	}
	return out
}

// expected is the model's object for a set of seen writes, in canonical form.
func (c *cluster) expected(seen writeSet) Object {
	var want Object
	for _, w := range c.survivors(seen).sorted() {
		mw := c.writes[w]
		want.Siblings = append(want.Siblings, Sibling{Dot: mw.dot, Value: mw.value, Tombstone: mw.tombstone, WrittenAt: int64(w)})
	}
	for w := range seen {
		d := c.writes[w].dot
		if want.VV == nil {
			want.VV = VV{}
		}
		want.VV[d.Actor] = max(want.VV[d.Actor], d.Counter)
	}
	return canonical(want)
}

// check reports how replica r's object differs from the model, if it does.
func (c *cluster) check(r int) error {
	rep := c.replicas[r]
	return c.compare(rep.name+" (actor "+rep.actor+")", rep.obj, rep.seen)
}

func (c *cluster) compare(what string, got Object, seen writeSet) error {
	want := c.expected(seen)
	if !sortedByDot(got) {
		return fmt.Errorf("%s has siblings out of dot order, so equal objects would encode differently: %s", what, describe(got))
	}
	if reflect.DeepEqual(canonical(got), want) {
		return nil
	}
	gotIDs, wantIDs := writeIDs(got), writeIDs(want)
	return fmt.Errorf("%s differs from the model:\n  lost writes %v, unexpected writes %v\n  got  %s\n  want %s",
		what, setMinus(wantIDs, gotIDs), setMinus(gotIDs, wantIDs), describe(got), describe(want))
}

// writeIDs returns the ids of the writes o holds as siblings.
func writeIDs(o Object) writeSet {
	out := writeSet{}
	for _, s := range o.Siblings {
		out[int(s.WrittenAt)] = struct{}{}
	}
	return out
}

func setMinus(a, b writeSet) []int {
	var out []int
	for _, id := range a.sorted() {
		if !b.has(id) {
			out = append(out, id)
		}
	}
	return out
}

// canonical returns o in the one form equal objects share: siblings sorted
// by dot, vector without zero counters, and empty collections nil.
func canonical(o Object) Object {
	var out Object
	if len(o.Siblings) > 0 {
		out.Siblings = slices.Clone(o.Siblings)
		slices.SortFunc(out.Siblings, func(x, y Sibling) int { return x.Dot.Compare(y.Dot) })
	}
	for a, n := range o.VV {
		if n == 0 {
			continue
		}
		if out.VV == nil {
			out.VV = VV{}
		}
		out.VV[a] = n
	}
	return out
}

// deepCopy shares no memory with o, so a later mutation of o shows.
func deepCopy(o Object) Object {
	out := Object{VV: o.VV.Clone()}
	if o.Siblings != nil {
		out.Siblings = make([]Sibling, len(o.Siblings))
		for i, s := range o.Siblings {
			s.Value = slices.Clone(s.Value)
			out.Siblings[i] = s
		}
	}
	return out
}

// describe renders an object compactly and deterministically for failure
// messages: siblings as actor:counter=value, then the vector.
func describe(o Object) string {
	var b strings.Builder
	b.WriteString("[")
	for i, s := range canonical(o).Siblings {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d=%s", s.Dot.Actor, s.Dot.Counter, s.Value)
		if s.Tombstone {
			b.WriteString("(deleted)")
		}
	}
	b.WriteString("] {")
	for i, a := range slices.Sorted(maps.Keys(o.VV)) {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d", a, o.VV[a])
	}
	b.WriteString("}")
	return b.String()
}
