package dvv

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MaxCounter is the highest counter a dot may carry. Counters are minted
// one at a time from 1, so no history reaches it; keeping them below 2^63
// leaves room to detect a counter that a forged context or a corrupted copy
// pushed near the end of the range, and keeps every counter exact in a
// signed 64-bit integer or a JSON number reader that uses one.
const MaxCounter = 1<<63 - 1

// ErrCounterOverflow is Update's refusal to mint a dot above MaxCounter.
var ErrCounterOverflow = errors.New("dvv: counter overflow")

// Dot names one write: the actor that minted it and that actor's counter.
type Dot struct {
	Actor   string `msgpack:"a"`
	Counter uint64 `msgpack:"c"`
}

// Compare orders dots by actor, then counter; siblings are kept in this order
// so that equal objects encode to equal bytes.
func (d Dot) Compare(o Dot) int {
	if c := strings.Compare(d.Actor, o.Actor); c != 0 {
		return c
	}
	switch {
	case d.Counter < o.Counter:
		return -1
	case d.Counter > o.Counter:
		return 1
	}
	return 0
}

// VV is a version vector: for each actor, the highest counter seen. A nil VV
// is the empty vector.
type VV map[string]uint64

// Covers reports whether the vector has seen the dot.
func (v VV) Covers(d Dot) bool { return d.Counter <= v[d.Actor] }

// Descends reports whether v has seen everything o has.
func (v VV) Descends(o VV) bool {
	for a, c := range o {
		if v[a] < c {
			return false
		}
	}
	return true
}

// Exceeds returns an actor for which v names a counter above o's, the first
// by name when there are several; ok is false when o has seen everything v
// names (o.Descends(v)). A coordinator asks it of every client context
// against its own copy's vector, so when o descends v it costs one pass over
// v and allocates nothing.
func (v VV) Exceeds(o VV) (actor string, ok bool) {
	for a, c := range v {
		if c > o[a] && (!ok || a < actor) {
			actor, ok = a, true
		}
	}
	return actor, ok
}

// Clamp returns v with every counter lowered to at most o's: a vector that
// names only dots o has seen.
func (v VV) Clamp(o VV) VV {
	out := make(VV, len(v))
	for a, c := range v {
		if c = min(c, o[a]); c > 0 {
			out[a] = c
		}
	}
	return out
}

// Merge returns the pointwise maximum of v and o as a new vector.
func (v VV) Merge(o VV) VV {
	out := make(VV, max(len(v), len(o)))
	for a, c := range v {
		if c > 0 {
			out[a] = c
		}
	}
	for a, c := range o {
		if c > out[a] {
			out[a] = c
		}
	}
	return out
}

// Clone returns a copy of v that shares nothing with it.
func (v VV) Clone() VV {
	if v == nil {
		return nil
	}
	return maps.Clone(v)
}

// Equal reports whether the vectors hold the same entries (a zero counter
// equals a missing entry).
func (v VV) Equal(o VV) bool { return v.Descends(o) && o.Descends(v) }

// Sibling is one concurrent value of an object, or a deletion marker.
type Sibling struct {
	Dot       Dot    `msgpack:"d"`
	Value     []byte `msgpack:"v"`
	Tombstone bool   `msgpack:"t"`
	// WrittenAt is the write's time in Unix nanoseconds: the
	// coordinator's hybrid logical clock, its wall clock unless the key
	// already held a later write. It decides which write a last-write-wins
	// object keeps (SyncLWW); it never decides which siblings survive a
	// Sync.
	WrittenAt int64 `msgpack:"w"`
}

// Object is what cairn stores under a key. The zero Object is the empty one:
// no siblings, nothing seen.
type Object struct {
	Siblings []Sibling `msgpack:"s"`
	VV       VV        `msgpack:"vv"`
}

// Update returns the object after a write coordinated by actor with the
// client's context ctx: the siblings ctx covers are replaced by one new
// sibling whose dot actor mints now. A nil ctx replaces nothing.
//
// The new counter is one above anything actor is known to have minted, in the
// local object or in the context: a context can only carry an actor's dot if
// that actor minted it, so taking the maximum keeps dots unique even if a
// caller breaks the incarnation rule.
//
// Update trusts ctx to name only dots that were minted: a context naming
// counters beyond them would cover writes not made yet, which would vanish
// when they meet this object. Checking that is the coordinator's job
// (ctx.Exceeds(o.VV) before Update); Update itself refuses, with an error
// wrapping ErrCounterOverflow and o unchanged, only what it cannot
// represent: a context counter above MaxCounter, or a new dot that would
// pass it.
func (o Object) Update(ctx VV, actor string, value []byte, tombstone bool, writtenAt int64) (Object, error) {
	for a, c := range ctx {
		if c > MaxCounter {
			return Object{}, fmt.Errorf("%w: the context names counter %d for actor %q, above the last one that can be minted (%d)", ErrCounterOverflow, c, a, uint64(MaxCounter))
		}
	}
	last := max(o.VV[actor], ctx[actor])
	if last >= MaxCounter {
		return Object{}, fmt.Errorf("%w: actor %q has minted counter %d for this key, the last one there is", ErrCounterOverflow, actor, last)
	}
	dot := Dot{Actor: actor, Counter: last + 1}
	kept := make([]Sibling, 0, len(o.Siblings)+1)
	for _, s := range o.Siblings {
		if !ctx.Covers(s.Dot) {
			kept = append(kept, s)
		}
	}
	kept = append(kept, Sibling{Dot: dot, Value: value, Tombstone: tombstone, WrittenAt: writtenAt})
	vv := o.VV.Merge(ctx)
	vv[actor] = dot.Counter
	return normalize(Object{Siblings: kept, VV: vv}), nil
}

// Validate checks what every object a history can produce satisfies, and
// what Sync relies on: each sibling's dot names an actor and a counter from
// 1 to MaxCounter, no two siblings share a dot, the object's own vector
// covers every sibling, and every vector counter is at most MaxCounter. A
// node checks each object a peer sends it (replication, read repair,
// handoff, anti-entropy) before merging it: a dot of counter 0 is covered
// by every vector, so merging it would make replicas drop it, and a sibling
// its own vector does not cover makes Sync keep or drop it by accident.
// The error names the first fault found.
func (o Object) Validate() error {
	for a, c := range o.VV {
		switch {
		case a == "":
			return errors.New("the version vector names an empty actor")
		case c > MaxCounter:
			return fmt.Errorf("the version vector names counter %d for actor %q, above %d", c, a, uint64(MaxCounter))
		}
	}
	sorted := true
	for i, s := range o.Siblings {
		d := s.Dot
		switch {
		case d.Actor == "":
			return fmt.Errorf("sibling %d has a dot with an empty actor", i)
		case d.Counter == 0:
			return fmt.Errorf("sibling %d has dot %s:0; counters start at 1", i, d.Actor)
		case d.Counter > MaxCounter:
			return fmt.Errorf("sibling %d has dot %s:%d, above %d", i, d.Actor, d.Counter, uint64(MaxCounter))
		case !o.VV.Covers(d):
			return fmt.Errorf("sibling %d has dot %s:%d, which the object's own vector (%s:%d) does not cover", i, d.Actor, d.Counter, d.Actor, o.VV[d.Actor])
		}
		if i > 0 && o.Siblings[i-1].Dot.Compare(d) >= 0 {
			sorted = false
		}
	}
	siblings := o.Siblings
	if !sorted {
		// Every copy cairn writes is sorted; one that is not is checked
		// for duplicates on a sorted copy rather than refused.
		siblings = slices.SortedFunc(slices.Values(o.Siblings), func(x, y Sibling) int { return x.Dot.Compare(y.Dot) })
	}
	for i := 1; i < len(siblings); i++ {
		if d := siblings[i].Dot; d == siblings[i-1].Dot {
			return fmt.Errorf("two siblings share dot %s:%d", d.Actor, d.Counter)
		}
	}
	return nil
}

// Sync merges two copies of an object. A sibling survives unless the other
// copy's vector covers its dot while the other copy does not hold it: that
// means the other copy saw the write and something replaced it.
func Sync(a, b Object) Object {
	out := Object{VV: a.VV.Merge(b.VV)}
	out.Siblings = make([]Sibling, 0, len(a.Siblings)+len(b.Siblings))
	for _, s := range a.Siblings {
		if !b.VV.Covers(s.Dot) || b.holds(s.Dot) {
			out.Siblings = append(out.Siblings, s)
		}
	}
	for _, s := range b.Siblings {
		if (!a.VV.Covers(s.Dot) || a.holds(s.Dot)) && !out.holds(s.Dot) {
			out.Siblings = append(out.Siblings, s)
		}
	}
	return normalize(out)
}

// holds reports whether the object has a sibling with the dot.
func (o Object) holds(d Dot) bool {
	for _, s := range o.Siblings {
		if s.Dot == d {
			return true
		}
	}
	return false
}

// normalize sorts siblings by dot so equal objects are equal field by field.
func normalize(o Object) Object {
	slices.SortFunc(o.Siblings, func(x, y Sibling) int { return x.Dot.Compare(y.Dot) })
	return o
}

// Live returns the siblings that are values, not deletion markers.
func (o Object) Live() []Sibling {
	var live []Sibling
	for _, s := range o.Siblings {
		if !s.Tombstone {
			live = append(live, s)
		}
	}
	return live
}

// Found reports whether the object has at least one live sibling; an object
// of tombstones only reads as not found.
func (o Object) Found() bool {
	for _, s := range o.Siblings {
		if !s.Tombstone {
			return true
		}
	}
	return false
}

// Empty reports whether the object has never seen a write.
func (o Object) Empty() bool { return len(o.Siblings) == 0 && len(o.VV) == 0 }

// Descends reports whether o already holds everything b knows: Sync(o, b)
// equals o. Read repair sends a copy to every replica whose
// object the merge descends but does not equal.
func (o Object) Descends(b Object) bool {
	if !o.VV.Descends(b.VV) {
		return false
	}
	for _, s := range b.Siblings {
		if !o.holds(s.Dot) && !o.VV.Covers(s.Dot) {
			return false
		}
	}
	for _, s := range o.Siblings {
		if b.VV.Covers(s.Dot) && !b.holds(s.Dot) {
			return false
		}
	}
	return true
}

// Equal reports whether two objects hold the same siblings (by dot) and the
// same vector.
func (o Object) Equal(b Object) bool {
	if len(o.Siblings) != len(b.Siblings) || !o.VV.Equal(b.VV) {
		return false
	}
	for _, s := range o.Siblings {
		if !b.holds(s.Dot) {
			return false
		}
	}
	return true
}

// Prunable returns, sorted, the actors of o's vector that retired reports
// retired and that no sibling's dot names: the entries Prune may drop.
// It is a pure function of the object, so equal copies agree on it.
func (o Object) Prunable(retired func(actor string) bool) []string {
	var out []string
	for a, c := range o.VV {
		if c > 0 && retired(a) && !o.names(a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// Prune returns o without the version-vector entries of actors, and how
// many it dropped. An entry a sibling's dot names is kept: dropping it
// would leave a sibling its own vector does not cover. o is not changed.
//
// Prune is only safe under the rule docs/ARCHITECTURE.md argues
// ("Pruning retired actors"): each actor is retired (it will never mint
// again), and no copy of the key anywhere, stored or in flight, holds a
// sibling with one of its dots that o does not hold. A copy that did
// would have its sibling kept by the next Sync, since the pruned vector no
// longer covers it: a write that was replaced would come back. The same
// object pruned of the same actors gives the same object, so replicas
// that prune alike stay equal.
func (o Object) Prune(actors []string) (Object, int) {
	out := Object{Siblings: slices.Clone(o.Siblings), VV: o.VV.Clone()}
	dropped := 0
	for _, a := range actors {
		if out.VV[a] > 0 && !o.names(a) {
			delete(out.VV, a)
			dropped++
		}
	}
	return out, dropped
}

// names reports whether a sibling's dot names the actor.
func (o Object) names(actor string) bool {
	for _, s := range o.Siblings {
		if s.Dot.Actor == actor {
			return true
		}
	}
	return false
}
