package dvv

import (
	"maps"
	"slices"
	"strings"
)

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
	// WrittenAt is the coordinator's wall clock in Unix nanoseconds at the
	// write. It informs and breaks last-write-wins ties; it never decides
	// which siblings survive a Sync.
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
func (o Object) Update(ctx VV, actor string, value []byte, tombstone bool, writtenAt int64) Object {
	dot := Dot{Actor: actor, Counter: max(o.VV[actor], ctx[actor]) + 1}
	kept := make([]Sibling, 0, len(o.Siblings)+1)
	for _, s := range o.Siblings {
		if !ctx.Covers(s.Dot) {
			kept = append(kept, s)
		}
	}
	kept = append(kept, Sibling{Dot: dot, Value: value, Tombstone: tombstone, WrittenAt: writtenAt})
	vv := o.VV.Merge(ctx)
	vv[actor] = dot.Counter
	return normalize(Object{Siblings: kept, VV: vv})
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
