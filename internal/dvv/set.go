package dvv

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Set is an add-wins observed-remove set without tombstones (ORSWOT):
// each element carries the dots of the adds that put it there, and Clock
// covers every dot the state has seen, added or removed since. A dot the
// clock covers and no element carries was removed, so a merge drops it
// wherever it still appears, while a dot one side has not seen survives:
// an add concurrent with a remove wins. The dots are the object's own
// (an add is stored under the dot its coordinator mints), so they are
// unique by the same actor rule as every dot.
//
// The clock is the set's own, not the object's vector: pruning retired
// actors from vectors must never make a removed element come back.
type Set struct {
	Clock   VV
	Entries map[string][]Dot
}

// maxSetEntries bounds a decoded set's counts: every entry takes at least
// 2 bytes.
const maxSetEntries = 1 << 22

// Elements returns the set's elements in byte order.
func (s Set) Elements() [][]byte {
	out := make([][]byte, 0, len(s.Entries))
	for e := range s.Entries {
		out = append(out, []byte(e))
	}
	slices.SortFunc(out, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	return out
}

// Join merges two set states: the join of their clocks, and for each
// element the dots both carry, plus the dots one carries that the other's
// clock does not cover (the other has not seen that add). An element left
// with no dot is gone.
func (s Set) Join(t Set) Set {
	out := Set{Clock: s.Clock.Merge(t.Clock), Entries: map[string][]Dot{}}
	keep := func(e string, mine, theirs []Dot, theirClock VV) {
		for _, d := range mine {
			if slices.Contains(theirs, d) || !theirClock.Covers(d) {
				if !slices.Contains(out.Entries[e], d) {
					out.Entries[e] = append(out.Entries[e], d)
				}
			}
		}
	}
	for e, ds := range s.Entries {
		keep(e, ds, t.Entries[e], t.Clock)
	}
	for e, ds := range t.Entries {
		keep(e, ds, s.Entries[e], s.Clock)
	}
	for e, ds := range out.Entries {
		slices.SortFunc(ds, Dot.Compare)
		out.Entries[e] = ds
	}
	return out
}

// Add returns s with element added under dot d: the element's earlier
// dots are replaced (the adder has seen them) and the clock covers d.
func (s Set) Add(element []byte, d Dot) Set {
	out := s.Join(Set{})
	out.Entries[string(element)] = []Dot{d}
	out.Clock[d.Actor] = max(out.Clock[d.Actor], d.Counter)
	return out
}

// Remove returns s without the dots of element that ctx covers: the adds
// the remover observed. An add ctx does not cover (made concurrently, or
// after the remover's read) keeps the element.
func (s Set) Remove(element []byte, ctx VV) Set {
	out := s.Join(Set{})
	var left []Dot
	for _, d := range out.Entries[string(element)] {
		if !ctx.Covers(d) {
			left = append(left, d)
		}
	}
	if len(left) == 0 {
		delete(out.Entries, string(element))
	} else {
		out.Entries[string(element)] = left
	}
	return out
}

// Encode is s's canonical encoding: the clock (a uvarint count, then per
// actor in order its length, bytes and counter), then the elements in
// order (length, bytes, a uvarint count of dots, each dot's actor length,
// actor and counter).
func (s Set) Encode() []byte {
	var b []byte
	actors := make([]string, 0, len(s.Clock))
	for a, c := range s.Clock {
		if c > 0 {
			actors = append(actors, a)
		}
	}
	slices.Sort(actors)
	b = binary.AppendUvarint(b, uint64(len(actors)))
	for _, a := range actors {
		b = appendString(b, a)
		b = binary.AppendUvarint(b, s.Clock[a])
	}
	elems := s.Elements()
	b = binary.AppendUvarint(b, uint64(len(elems)))
	for _, e := range elems {
		b = appendString(b, string(e))
		ds := slices.Clone(s.Entries[string(e)])
		slices.SortFunc(ds, Dot.Compare)
		b = binary.AppendUvarint(b, uint64(len(ds)))
		for _, d := range ds {
			b = appendString(b, d.Actor)
			b = binary.AppendUvarint(b, d.Counter)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// DecodeSet reads an encoded set. Empty bytes are the empty set. Every
// count and length is checked against the bytes left before anything is
// allocated by it, and what no history makes is refused: a dot the clock
// does not cover, an element without dots, a counter of 0 or above
// MaxCounter, an element or actor twice.
func DecodeSet(b []byte) (Set, error) {
	s := Set{Clock: VV{}, Entries: map[string][]Dot{}}
	if len(b) == 0 {
		return s, nil
	}
	d := setDecoder{b: b}
	n := d.count(2)
	for range n {
		a := d.str()
		c := d.uint()
		if d.err == nil && (a == "" || c == 0 || c > MaxCounter || s.Clock[a] != 0) {
			d.fail("bad clock entry for actor %q", a)
		}
		if d.err != nil {
			return Set{}, d.err
		}
		s.Clock[a] = c
	}
	n = d.count(3)
	for range n {
		e := d.str()
		k := d.count(2)
		if d.err == nil && (k == 0 || s.Entries[e] != nil) {
			d.fail("element %q: %d dots, or twice", e, k)
		}
		var ds []Dot
		for range k {
			dot := Dot{Actor: d.str(), Counter: d.uint()}
			if d.err == nil && (dot.Actor == "" || dot.Counter == 0 || !s.Clock.Covers(dot) || slices.Contains(ds, dot)) {
				d.fail("element %q: bad dot %v", e, dot)
			}
			if d.err != nil {
				return Set{}, d.err
			}
			ds = append(ds, dot)
		}
		if d.err != nil {
			return Set{}, d.err
		}
		s.Entries[e] = ds
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the elements", len(d.b))
	}
	if d.err != nil {
		return Set{}, d.err
	}
	return s, nil
}

type setDecoder struct {
	b   []byte
	err error
}

func (d *setDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("set: "+format, args...)
	}
}

func (d *setDecoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items of at least min bytes each, refused when
// the bytes left cannot hold that many.
func (d *setDecoder) count(min int) uint64 {
	n := d.uint()
	if d.err == nil && (n > uint64(len(d.b)/min) || n > maxSetEntries) {
		d.fail("%d items in %d bytes", n, len(d.b))
		return 0
	}
	return n
}

func (d *setDecoder) str() string {
	l := d.uint()
	if d.err == nil && l > uint64(len(d.b)) {
		d.fail("string of %d bytes in %d", l, len(d.b))
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[:l])
	d.b = d.b[l:]
	return s
}

// SetOf is the set an object of a set bucket holds: the join of its
// siblings' sets (one, once merged by SetMode). A value that does not
// decode counts as empty.
func SetOf(o Object) Set {
	s := Set{Clock: VV{}, Entries: map[string][]Dot{}}
	for _, sib := range o.Siblings {
		if sib.Tombstone {
			continue
		}
		if d, err := DecodeSet(sib.Value); err == nil {
			s = s.Join(d)
		}
	}
	return s
}

func joinSets(o Object) []byte { return SetOf(o).Encode() }

// AheadError is a set remove whose context names adds the copy's set has
// not seen: removing with it could not remove them, and the remover meant
// to. The coordinator catches up with other copies and tries again
// (node/coord), as for a put's context.
type AheadError struct {
	Actor         string
	Counter, Held uint64
}

func (e *AheadError) Error() string {
	return fmt.Sprintf("context names actor %q counter %d; the set holds %d", e.Actor, e.Counter, e.Held)
}
