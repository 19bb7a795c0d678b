package dvv

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// drawCounterObject draws a counter bucket's object: a vector and zero to
// two siblings, each a counter over a few actors.
func drawCounterObject(t *rapid.T, label string) Object {
	o := drawObject(t, label)
	for i := range o.Siblings {
		c := Counter{}
		for _, a := range []string{"a", "b", "c"} {
			c[a] = PN{P: rapid.Uint64Range(0, 5).Draw(t, label+" p "+a), N: rapid.Uint64Range(0, 5).Draw(t, label+" n "+a)}
		}
		o.Siblings[i].Value = c.Encode()
		o.Siblings[i].Tombstone = false
	}
	return o
}

// TestCounterSyncAlgebra: the counter merge is commutative, associative
// and idempotent on any objects, its value is the pointwise maximum of
// both copies' totals, and Descends says exactly when it changes nothing.
func TestCounterSyncAlgebra(t *testing.T) {
	m := CounterMode
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawCounterObject(t, "a"), drawCounterObject(t, "b"), drawCounterObject(t, "c")
		ab, ba := m.Sync(a, b), m.Sync(b, a)
		if !sameState(ab, ba) {
			t.Fatalf("not commutative:\n%+v\n%+v", ab, ba)
		}
		if l, r := m.Sync(ab, c), m.Sync(a, m.Sync(b, c)); !sameState(l, r) {
			t.Fatalf("not associative:\n%+v\n%+v", l, r)
		}
		if aa := m.Sync(ab, ab); !sameState(aa, ab) {
			t.Fatalf("not idempotent:\n%+v\n%+v", aa, ab)
		}
		if len(ab.Siblings) > 1 {
			t.Fatalf("%d siblings after a merge", len(ab.Siblings))
		}
		if err := ab.Validate(); err != nil {
			t.Fatalf("invalid merge: %v", err)
		}
		want := CounterOf(a).Join(CounterOf(b))
		got := CounterOf(ab)
		for _, x := range []string{"a", "b", "c"} {
			if got[x] != want[x] {
				t.Fatalf("actor %s: %+v, want %+v", x, got[x], want[x])
			}
		}
		if m.Descends(ab, a) != true || m.Descends(ab, b) != true {
			t.Fatalf("the merge does not descend its inputs")
		}
		if m.Descends(a, b) != sameState(m.Sync(a, b), a) {
			t.Fatalf("Descends disagrees with Sync")
		}
	})
}

// TestCounterSumsAcknowledgedIncrements: replicas increment under their
// own actors and send their copies to each other in any order, any number
// of times, stale ones included; once every copy has reached every
// replica, each holds the sum of every increment made, and at every step
// a replica's value counts each increment it has seen exactly once.
func TestCounterSumsAcknowledgedIncrements(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const n = 3
		actors := []string{"n1.a", "n2.b", "n3.c"}
		replicas := make([]Object, n)
		var sent []Object // every copy ever sent: any may be delivered again
		var total int64
		for i := range rapid.IntRange(1, 60).Draw(t, "steps") {
			_ = i
			r := rapid.IntRange(0, n-1).Draw(t, "replica")
			if rapid.Bool().Draw(t, "increment") {
				delta := rapid.Int64Range(-5, 5).Draw(t, "delta")
				v, err := CounterMode.Apply(replicas[r], actors[r], Op{Delta: delta})
				if err != nil {
					t.Fatal(err)
				}
				next, err := replicas[r].Update(replicas[r].VV, actors[r], v, false, 0)
				if err != nil {
					t.Fatal(err)
				}
				replicas[r] = next
				total += delta
				sent = append(sent, next)
				continue
			}
			if len(sent) == 0 {
				continue
			}
			msg := sent[rapid.IntRange(0, len(sent)-1).Draw(t, "message")]
			replicas[r] = CounterMode.Sync(replicas[r], msg)
		}
		for _, msg := range sent {
			for r := range replicas {
				replicas[r] = CounterMode.Sync(replicas[r], msg)
			}
		}
		for r := range replicas {
			if v, ok := CounterOf(replicas[r]).Value(); !ok || v != total {
				t.Fatalf("replica %d holds %d, want %d", r, v, total)
			}
		}
	})
}

func TestCounterEncoding(t *testing.T) {
	c := Counter{"n1.a": {P: 5, N: 2}, "n2.b": {P: math.MaxInt64}, "z": {}}
	back, err := DecodeCounter(c.Encode())
	require.NoError(t, err)
	require.Equal(t, Counter{"n1.a": {P: 5, N: 2}, "n2.b": {P: math.MaxInt64}}, back)
	_, err = back.Add("n2.b", 1)
	require.ErrorIs(t, err, ErrCounterRange)
	_, err = back.Add("n1.a", math.MinInt64)
	require.ErrorIs(t, err, ErrCounterRange, "N of 2 plus 2^63 does not fit")
	_, err = back.Add("n3.c", math.MinInt64)
	require.ErrorIs(t, err, ErrCounterRange, "2^63 alone does not fit")
	next, err := back.Add("n3.c", -7)
	require.NoError(t, err)
	require.Equal(t, PN{N: 7}, next["n3.c"])
	for _, bad := range [][]byte{{0xff}, {5, 1}, {1, 0, 1, 1}, {1, 2, 'a'}, append(Counter{"a": {P: 1}}.Encode(), 0)} {
		_, err := DecodeCounter(bad)
		require.Error(t, err, "%x", bad)
	}
}

// FuzzDecodeCounter: no input panics or allocates by a length it has not
// checked, and what decodes encodes back to a counter that decodes alike.
func FuzzDecodeCounter(f *testing.F) {
	f.Add(Counter{"n1.a": {P: 5, N: 2}}.Encode())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCounter(b)
		if err != nil {
			return
		}
		back, err := DecodeCounter(c.Encode())
		require.NoError(t, err)
		require.Equal(t, c.Encode(), back.Encode())
	})
}
