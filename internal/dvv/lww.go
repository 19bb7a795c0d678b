package dvv

import (
	"bytes"
	"cmp"
	"fmt"
)

// Mode is how an object's concurrent writes are resolved: a bucket's
// conflict property. Every place two copies of an object meet (a replica
// taking a write, a coordinator merging a read, handoff, anti-entropy,
// ownership transfer) merges them with its bucket's Mode.Sync, so every
// copy resolves the same way.
type Mode uint8

const (
	// Siblings keeps concurrent writes side by side (Sync): the default.
	Siblings Mode = iota
	// LWW keeps one write, the last by Later: the one with the highest
	// WrittenAt, ties broken by dot (SyncLWW).
	LWW
	// CounterMode holds a PN-counter (Counter) in one sibling and merges by
	// its join (a datatype=counter bucket).
	CounterMode
	// SetMode holds an add-wins set (Set) in one sibling and merges by its
	// join (a datatype=set bucket).
	SetMode
)

func (m Mode) String() string {
	switch m {
	case Siblings:
		return "siblings"
	case LWW:
		return "lww"
	case CounterMode:
		return "counter"
	case SetMode:
		return "set"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Sync merges two copies as m resolves them.
func (m Mode) Sync(a, b Object) Object {
	switch m {
	case LWW:
		return SyncLWW(a, b)
	case CounterMode:
		return syncState(a, b, joinCounters)
	case SetMode:
		return syncState(a, b, joinSets)
	}
	return Sync(a, b)
}

// Descends reports whether o already holds everything b brings as m
// merges them: m.Sync(o, b) equals o, so a replica need not write.
func (m Mode) Descends(o, b Object) bool {
	if m.Datatype() {
		return o.VV.Descends(b.VV) && sameState(m.Sync(o, b), o)
	}
	if m != LWW {
		return o.Descends(b)
	}
	if !o.VV.Descends(b.VV) || len(o.Siblings) > 1 {
		return false
	}
	for _, s := range b.Siblings {
		if len(o.Siblings) == 0 || Later(s, o.Siblings[0]) {
			return false
		}
	}
	return true
}

// Resolve returns o as m keeps it: o itself for Siblings; for LWW, o with
// its last sibling only. A coordinator resolves the object a write left
// before storing or sending it.
func (m Mode) Resolve(o Object) Object {
	if m == Siblings || len(o.Siblings) <= 1 {
		return o
	}
	return m.Sync(o, Object{})
}

// Datatype reports whether m's objects hold a datatype's state (a
// counter) rather than values a client wrote.
func (m Mode) Datatype() bool { return m == CounterMode || m == SetMode }

// OpKind says what an Op does.
type OpKind uint8

const (
	OpIncr   OpKind = iota // add Delta to a counter
	OpAdd                  // add Element to a set
	OpRemove               // remove from a set the adds of Element that Context covers
)

// Op is a client's operation on a datatype object.
type Op struct {
	Kind    OpKind
	Delta   int64
	Element []byte
	// Context is a set remove's: the set clock of the client's read. Nil
	// removes every add the coordinator's copy holds.
	Context VV
	// Clamp lowers a Context that names adds the copy has not seen to the
	// copy's clock instead of refusing it (*AheadError); the coordinator
	// sets it, as coord.Write.ClampContext.
	Clamp bool
}

// Name is the operation as errors show it.
func (op Op) Name() string {
	switch op.Kind {
	case OpAdd:
		return "set add"
	case OpRemove:
		return "set remove"
	}
	return "counter incr"
}

// Apply returns the value o holds after actor applies op to it: the
// state a coordinator stores as the one sibling of its copy, under a dot
// actor mints (Object.Update with o's whole vector as the context).
// Since actor only mints on a copy holding all it minted, o holds
// actor's latest totals, and adding to them can only raise them.
func (m Mode) Apply(o Object, actor string, op Op) ([]byte, error) {
	switch m {
	case CounterMode:
		if op.Kind != OpIncr {
			break
		}
		c, err := CounterOf(o).Add(actor, op.Delta)
		if err != nil {
			return nil, err
		}
		return c.Encode(), nil
	case SetMode:
		s := SetOf(o)
		switch op.Kind {
		case OpAdd:
			// The dot Update mints next with o's whole vector as context.
			return s.Add(op.Element, Dot{Actor: actor, Counter: o.VV[actor] + 1}).Encode(), nil
		case OpRemove:
			ctx := op.Context
			if ctx == nil {
				ctx = s.Clock
			}
			if a, ahead := ctx.Exceeds(s.Clock); ahead {
				if !op.Clamp {
					return nil, &AheadError{Actor: a, Counter: ctx[a], Held: s.Clock[a]}
				}
				ctx = ctx.Clamp(s.Clock)
			}
			return s.Remove(op.Element, ctx).Encode(), nil
		}
	}
	return nil, fmt.Errorf("%s: not an operation of a %v bucket", op.Name(), m)
}

// Later reports whether sibling a wins over b under last-write-wins: a
// higher WrittenAt, then, between equal times, the higher dot (actor,
// then counter). Two siblings of one dot are one write and never differ;
// a forged or corrupt pair that does is still ordered, tombstone first,
// then by value bytes, so that every replica picks the same one.
func Later(a, b Sibling) bool { return compareLWW(a, b) > 0 }

func compareLWW(a, b Sibling) int {
	if c := cmp.Compare(a.WrittenAt, b.WrittenAt); c != 0 {
		return c
	}
	if c := a.Dot.Compare(b.Dot); c != 0 {
		return c
	}
	if a.Tombstone != b.Tombstone {
		if a.Tombstone {
			return 1
		}
		return -1
	}
	return bytes.Compare(a.Value, b.Value)
}

// SyncLWW merges two copies of a last-write-wins object: the join of
// their vectors, and the one sibling of either that is Later than every
// other. It is the join of a semilattice (the pair of a vector and a
// sibling, each ordered), so it is commutative, associative and
// idempotent for any objects, not only those a history produced, and
// replicas that exchanged everything hold equal objects.
//
// Unlike Sync it does not drop a sibling the other copy's vector covers:
// whether a write was replaced is the timestamps' decision here. A
// coordinator stamps every write above every write its copy and its
// client's context have seen (node's hybrid logical clock), so a write
// that replaces another, by context, is also Later than it, and the two
// rules agree; taking the maximum keeps them agreeing when a stale copy
// still holds the replaced write, and never leaves an object with no
// sibling when both had one.
//
// The vector still records every dot either copy saw: it is what keeps a
// minted dot unique (Update mints above it) and what contexts cover.
func SyncLWW(a, b Object) Object {
	out := Object{VV: a.VV.Merge(b.VV)}
	var best *Sibling
	for _, sibs := range [2][]Sibling{a.Siblings, b.Siblings} {
		for i := range sibs {
			if best == nil || Later(sibs[i], *best) {
				best = &sibs[i]
			}
		}
	}
	if best != nil {
		out.Siblings = []Sibling{*best}
	}
	return out
}

// Stamp returns the highest WrittenAt of o's siblings, tombstones
// included, or 0 when it has none: the time a last-write-wins write must
// pass to win over everything o holds.
func (o Object) Stamp() int64 {
	var ts int64
	for _, s := range o.Siblings {
		ts = max(ts, s.WrittenAt)
	}
	return ts
}
