package dvv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
)

// Counter is a PN-counter: per actor, the sum of the increments (P) and
// of the decrements (N) that actor applied. Its actors are the dot actors
// of the object that holds it, so the rule that keeps dots unique (an
// actor only mints on a copy holding everything it minted) also keeps
// each actor's totals monotonic: an actor adds to the totals its own copy
// holds, and those are its latest.
type Counter map[string]PN

// PN is one actor's totals.
type PN struct{ P, N uint64 }

// ErrCounterRange is an increment that would take an actor's total past
// 2^63-1; the counter is left as it was.
var ErrCounterRange = errors.New("counter total out of range")

// maxCounterEntries bounds a decoded counter: one entry takes at least 3
// bytes, and an object is far smaller than this many.
const maxCounterEntries = 1 << 20

// Join is the pointwise maximum of two counters' totals: the least
// counter that holds both. It is commutative, associative and idempotent.
func (c Counter) Join(o Counter) Counter {
	out := make(Counter, max(len(c), len(o)))
	for a, v := range c {
		out[a] = v
	}
	for a, v := range o {
		cur := out[a]
		out[a] = PN{P: max(cur.P, v.P), N: max(cur.N, v.N)}
	}
	return out
}

// Add returns c with delta applied to actor's totals (P for a positive
// delta, N for a negative one).
func (c Counter) Add(actor string, delta int64) (Counter, error) {
	out := c.Join(nil)
	cur := out[actor]
	switch {
	case delta > 0:
		if cur.P > math.MaxInt64-uint64(delta) {
			return nil, fmt.Errorf("%w: actor %q's increments would pass 2^63-1", ErrCounterRange, actor)
		}
		cur.P += uint64(delta)
	case delta < 0:
		d := uint64(-(delta + 1)) + 1 // -MinInt64 does not fit an int64
		if d > math.MaxInt64-cur.N {
			return nil, fmt.Errorf("%w: actor %q's decrements would pass 2^63-1", ErrCounterRange, actor)
		}
		cur.N += d
	}
	out[actor] = cur
	return out, nil
}

// Value is the sum of every actor's increments less its decrements. It
// can pass the range of an int64 only by the sum of many actors' totals;
// ok is false then.
func (c Counter) Value() (v int64, ok bool) {
	sum := new(big.Int)
	var x big.Int
	for _, pn := range c {
		sum.Add(sum, x.SetUint64(pn.P))
		sum.Sub(sum, x.SetUint64(pn.N))
	}
	if !sum.IsInt64() {
		return 0, false
	}
	return sum.Int64(), true
}

// Encode is c's canonical encoding, actors in order, so that equal
// counters encode alike (anti-entropy hashes the bytes): a uvarint count,
// then for each actor its length, its bytes, P and N as uvarints. Actors
// whose totals are both 0 are left out.
func (c Counter) Encode() []byte {
	actors := make([]string, 0, len(c))
	for a, pn := range c {
		if pn != (PN{}) {
			actors = append(actors, a)
		}
	}
	slices.Sort(actors)
	b := binary.AppendUvarint(nil, uint64(len(actors)))
	for _, a := range actors {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
		b = binary.AppendUvarint(b, c[a].P)
		b = binary.AppendUvarint(b, c[a].N)
	}
	return b
}

// DecodeCounter reads an encoded counter. Empty bytes are the zero
// counter. Every length is checked against the bytes left before anything
// is allocated by it; a total above 2^63-1 is refused, as Add never makes
// one.
func DecodeCounter(b []byte) (Counter, error) {
	if len(b) == 0 {
		return Counter{}, nil
	}
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b))/3 || n > maxCounterEntries {
		return nil, fmt.Errorf("counter: %d entries in %d bytes", n, len(b))
	}
	c := make(Counter, n)
	for range n {
		var l uint64
		if l, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if l == 0 || l > uint64(len(b)) {
			return nil, fmt.Errorf("counter: actor of %d bytes in %d", l, len(b))
		}
		actor := string(b[:l])
		b = b[l:]
		var pn PN
		if pn.P, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if pn.N, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if pn.P > math.MaxInt64 || pn.N > math.MaxInt64 {
			return nil, fmt.Errorf("counter: actor %q's totals out of range", actor)
		}
		if _, dup := c[actor]; dup {
			return nil, fmt.Errorf("counter: actor %q twice", actor)
		}
		c[actor] = pn
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("counter: %d bytes after the entries", len(b))
	}
	return c, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errors.New("counter: bad varint")
	}
	return v, b[n:], nil
}

// CounterOf is the counter an object of a counter bucket holds: the join
// of its siblings' counters (one, once merged by Counter mode). A value
// that does not decode, which only a write from before the bucket was a
// counter can leave, counts as zero.
func CounterOf(o Object) Counter {
	c := Counter{}
	for _, s := range o.Siblings {
		if s.Tombstone {
			continue
		}
		if d, err := DecodeCounter(s.Value); err == nil {
			c = c.Join(d)
		}
	}
	return c
}

// syncState merges two copies of a datatype object: the join of their
// vectors and one sibling whose value is the join (by the datatype's
// joinValues) of every sibling of both, whose dot is the highest of their
// dots and whose time the latest. Each part is a join, so the whole is:
// commutative, associative and idempotent whatever the copies hold.
func syncState(a, b Object, join func(o Object) []byte) Object {
	out := Object{VV: a.VV.Merge(b.VV)}
	var best Dot
	var ts int64
	n := 0
	for _, sibs := range [2][]Sibling{a.Siblings, b.Siblings} {
		for _, s := range sibs {
			if n == 0 || s.Dot.Compare(best) > 0 {
				best = s.Dot
			}
			ts = max(ts, s.WrittenAt)
			n++
		}
	}
	if n == 0 {
		return out
	}
	all := Object{Siblings: append(slices.Clip(a.Siblings), b.Siblings...)}
	out.Siblings = []Sibling{{Dot: best, Value: join(all), WrittenAt: ts}}
	return out
}

func joinCounters(o Object) []byte { return CounterOf(o).Encode() }

// sameState reports whether a and b hold the same vector and the same
// siblings, values and times included.
func sameState(a, b Object) bool {
	if !a.VV.Equal(b.VV) || len(a.Siblings) != len(b.Siblings) {
		return false
	}
	for i := range a.Siblings {
		x, y := a.Siblings[i], b.Siblings[i]
		if x.Dot != y.Dot || x.Tombstone != y.Tombstone || x.WrittenAt != y.WrittenAt || string(x.Value) != string(y.Value) {
			return false
		}
	}
	return true
}
