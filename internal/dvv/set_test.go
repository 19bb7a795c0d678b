package dvv

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// setHistory runs random adds, removes and deliveries of copies among
// three replicas of a set object and returns every object ever sent, and
// the model: each add's dot by element, and each remove's effective
// context by element.
type setHistory struct {
	replicas []Object
	sent     []Object
	adds     map[string][]Dot
	removes  map[string][]VV
}

func runSetHistory(t *rapid.T, steps int) *setHistory {
	actors := []string{"n1.a", "n2.b", "n3.c"}
	h := &setHistory{replicas: make([]Object, 3), adds: map[string][]Dot{}, removes: map[string][]VV{}}
	elems := []string{"x", "y", "z"}
	for range steps {
		r := rapid.IntRange(0, 2).Draw(t, "replica")
		cur := h.replicas[r]
		switch rapid.IntRange(0, 3).Draw(t, "step") {
		case 0: // add
			e := rapid.SampledFrom(elems).Draw(t, "element")
			v, err := SetMode.Apply(cur, actors[r], Op{Kind: OpAdd, Element: []byte(e)})
			if err != nil {
				t.Fatal(err)
			}
			next, err := cur.Update(cur.VV, actors[r], v, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			h.adds[e] = append(h.adds[e], next.Siblings[0].Dot)
			h.replicas[r] = next
			h.sent = append(h.sent, next)
		case 1: // remove, with this copy's clock or another's, older
			e := rapid.SampledFrom(elems).Draw(t, "element")
			var ctx VV
			if len(h.sent) > 0 && rapid.Bool().Draw(t, "foreign context") {
				ctx = SetOf(h.sent[rapid.IntRange(0, len(h.sent)-1).Draw(t, "context from")]).Clock
			}
			op := Op{Kind: OpRemove, Element: []byte(e), Context: ctx}
			v, err := SetMode.Apply(cur, actors[r], op)
			var ahead *AheadError
			if errors.As(err, &ahead) {
				op.Clamp = true
				v, err = SetMode.Apply(cur, actors[r], op)
				ctx = ctx.Clamp(SetOf(cur).Clock)
			}
			if err != nil {
				t.Fatal(err)
			}
			if ctx == nil {
				ctx = SetOf(cur).Clock
			}
			next, err := cur.Update(cur.VV, actors[r], v, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			h.removes[e] = append(h.removes[e], ctx.Clone())
			h.replicas[r] = next
			h.sent = append(h.sent, next)
		default: // deliver any copy ever sent, again and out of order
			if len(h.sent) == 0 {
				continue
			}
			h.replicas[r] = SetMode.Sync(cur, h.sent[rapid.IntRange(0, len(h.sent)-1).Draw(t, "message")])
		}
	}
	return h
}

// TestSetSyncAlgebra: on states histories make, the set merge is
// commutative, associative and idempotent, leaves one sibling, and
// Descends says exactly when it changes nothing.
func TestSetSyncAlgebra(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := runSetHistory(t, rapid.IntRange(1, 30).Draw(t, "steps"))
		pick := func(label string) Object {
			all := append(slices.Clone(h.sent), h.replicas...)
			return all[rapid.IntRange(0, len(all)-1).Draw(t, label)]
		}
		a, b, c := pick("a"), pick("b"), pick("c")
		m := SetMode
		ab, ba := m.Sync(a, b), m.Sync(b, a)
		if !sameState(ab, ba) {
			t.Fatalf("not commutative:\n%+v\n%+v", ab, ba)
		}
		if l, r := m.Sync(ab, c), m.Sync(a, m.Sync(b, c)); !sameState(l, r) {
			t.Fatalf("not associative:\n%v\n%v", SetOf(l), SetOf(r))
		}
		if aa := m.Sync(ab, ab); !sameState(aa, ab) {
			t.Fatalf("not idempotent")
		}
		if len(ab.Siblings) > 1 {
			t.Fatalf("%d siblings after a merge", len(ab.Siblings))
		}
		if !m.Descends(ab, a) || !m.Descends(ab, b) || m.Descends(a, b) != sameState(m.Sync(a, b), a) {
			t.Fatalf("Descends disagrees with Sync")
		}
	})
}

// TestSetKeepsEveryAddNoRemoveObserved: once every copy has reached every
// replica, all hold the same set, and an element is in it exactly when
// one of its adds was observed by no remove of it (no remove's context
// covers the add's dot): add wins over a concurrent remove, and a remove
// takes away every add it observed.
func TestSetKeepsEveryAddNoRemoveObserved(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := runSetHistory(t, rapid.IntRange(1, 50).Draw(t, "steps"))
		for _, msg := range h.sent {
			for r := range h.replicas {
				h.replicas[r] = SetMode.Sync(h.replicas[r], msg)
			}
		}
		var want []string
		for e, dots := range h.adds {
			for _, d := range dots {
				observed := false
				for _, ctx := range h.removes[e] {
					observed = observed || ctx.Covers(d)
				}
				if !observed {
					want = append(want, e)
					break
				}
			}
		}
		slices.Sort(want)
		for r, obj := range h.replicas {
			var got []string
			for _, e := range SetOf(obj).Elements() {
				got = append(got, string(e))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("replica %d holds %v, want %v", r, got, want)
			}
		}
	})
}

func TestSetEncodingRefusesWhatNoHistoryMakes(t *testing.T) {
	s := Set{Clock: VV{"a": 3, "b": 1}, Entries: map[string][]Dot{"x": {{"a", 3}, {"b", 1}}, "y": {{"a", 2}}}}
	back, err := DecodeSet(s.Encode())
	require.NoError(t, err)
	require.Equal(t, s.Encode(), back.Encode())
	require.Equal(t, [][]byte{[]byte("x"), []byte("y")}, back.Elements())
	uncovered := Set{Clock: VV{"a": 1}, Entries: map[string][]Dot{"x": {{"a", 2}}}}
	_, err = DecodeSet(uncovered.Encode())
	require.ErrorContains(t, err, "bad dot")
	for _, bad := range [][]byte{{0xff}, {0x7f}, {1, 1, 'a', 0, 0}, {0, 1, 1, 'x', 0}, append(s.Encode(), 0)} {
		_, err := DecodeSet(bad)
		require.Error(t, err, "%x", bad)
	}
}

// FuzzDecodeSet: no input panics or allocates by a length it has not
// checked, and what decodes encodes back to the same set.
func FuzzDecodeSet(f *testing.F) {
	f.Add(Set{Clock: VV{"a": 3}, Entries: map[string][]Dot{"x": {{"a", 3}}}}.Encode())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSet(b)
		if err != nil {
			return
		}
		back, err := DecodeSet(s.Encode())
		require.NoError(t, err)
		require.Equal(t, s.Encode(), back.Encode())
	})
}
