package dvv

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func sib(actor string, counter uint64, value string) Sibling {
	return Sibling{Dot: Dot{Actor: actor, Counter: counter}, Value: []byte(value)}
}

func tomb(actor string, counter uint64) Sibling {
	return Sibling{Dot: Dot{Actor: actor, Counter: counter}, Tombstone: true}
}

func obj(vv VV, siblings ...Sibling) Object { return Object{Siblings: siblings, VV: vv} }

// The write under test in TestUpdate carries this value and time.
const newValue, newWrittenAt = "new", 42

func newSib(actor string, counter uint64, tombstone bool) Sibling {
	s := Sibling{Dot: Dot{Actor: actor, Counter: counter}, Tombstone: tombstone, WrittenAt: newWrittenAt}
	if !tombstone {
		s.Value = []byte(newValue)
	}
	return s
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name      string
		local     Object
		ctx       VV
		actor     string
		tombstone bool
		want      Object
	}{{
		name:  "put without context on a new key",
		actor: "a",
		want:  obj(VV{"a": 1}, newSib("a", 1, false)),
	}, {
		name:  "second put without context adds a sibling",
		local: obj(VV{"a": 1}, sib("a", 1, "x")),
		actor: "a",
		want:  obj(VV{"a": 2}, sib("a", 1, "x"), newSib("a", 2, false)),
	}, {
		name:  "put with a read's context replaces exactly what the read saw",
		local: obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")),
		ctx:   VV{"a": 1, "b": 1},
		actor: "b",
		want:  obj(VV{"a": 1, "b": 2}, newSib("b", 2, false)),
	}, {
		name:  "put keeps a sibling written after the read",
		local: obj(VV{"a": 2, "b": 1}, sib("a", 1, "x"), sib("a", 2, "y"), sib("b", 1, "z")),
		ctx:   VV{"a": 1, "b": 1},
		actor: "a",
		want:  obj(VV{"a": 3, "b": 1}, sib("a", 2, "y"), newSib("a", 3, false)),
	}, {
		name:  "context read elsewhere joins the vector and replaces nothing it did not see",
		local: obj(VV{"a": 1}, sib("a", 1, "x")),
		ctx:   VV{"b": 2},
		actor: "a",
		want:  obj(VV{"a": 2, "b": 2}, sib("a", 1, "x"), newSib("a", 2, false)),
	}, {
		name:  "context ahead of the local object for the coordinator's own actor",
		local: obj(VV{"a": 1}, sib("a", 1, "x")),
		ctx:   VV{"a": 5},
		actor: "a",
		want:  obj(VV{"a": 6}, newSib("a", 6, false)),
	}, {
		name:  "local object ahead of the context for the coordinator's own actor",
		local: obj(VV{"a": 7}, sib("a", 7, "x")),
		ctx:   VV{"a": 3},
		actor: "a",
		want:  obj(VV{"a": 8}, sib("a", 7, "x"), newSib("a", 8, false)),
	}, {
		name:      "delete with context leaves one tombstone and keeps the context",
		local:     obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")),
		ctx:       VV{"a": 1, "b": 1},
		actor:     "a",
		tombstone: true,
		want:      obj(VV{"a": 2, "b": 1}, newSib("a", 2, true)),
	}, {
		name:      "delete without context adds a tombstone beside the value",
		local:     obj(VV{"a": 1}, sib("a", 1, "x")),
		actor:     "b",
		tombstone: true,
		want:      obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), newSib("b", 1, true)),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, ctx := deepCopy(tt.local), tt.ctx.Clone()
			var value []byte
			if !tt.tombstone {
				value = []byte(newValue)
			}
			got, err := tt.local.Update(tt.ctx, tt.actor, value, tt.tombstone, newWrittenAt)
			require.NoError(t, err)
			require.Equal(t, canonical(tt.want), canonical(got))
			require.True(t, sortedByDot(got), "siblings out of order: %s", describe(got))
			require.Equal(t, local, tt.local, "Update changed the object it was called on")
			require.Equal(t, ctx, tt.ctx, "Update changed the client's context")
		})
	}
}

// TestUpdateMintsAboveLocalAndContext: the new dot's counter is one above the
// higher of the local object's and the context's counters for the actor, so a
// dot the context proves was minted is never minted again.
func TestUpdateMintsAboveLocalAndContext(t *testing.T) {
	for local := range uint64(4) {
		for ctx := range uint64(4) {
			t.Run(fmt.Sprintf("local=%d,ctx=%d", local, ctx), func(t *testing.T) {
				var o Object
				if local > 0 {
					o = obj(VV{"a": local}, sib("a", local, "x"))
				}
				got := mustUpdate(o.Update(VV{"a": ctx}, "a", []byte("y"), false, 0))
				want := max(local, ctx) + 1
				require.Equal(t, want, got.VV["a"])
				require.Contains(t, got.Siblings, Sibling{Dot: Dot{Actor: "a", Counter: want}, Value: []byte("y")})
			})
		}
	}
}

func TestDeleteReadsAsNotFoundAndKeepsContext(t *testing.T) {
	put := mustUpdate(Object{}.Update(nil, "a", []byte("x"), false, 1))
	deleted := mustUpdate(put.Update(put.VV, "b", nil, true, 2))
	require.False(t, deleted.Found())
	require.False(t, deleted.Empty(), "a deleted key still remembers what it saw")
	require.Empty(t, deleted.Live())
	require.True(t, deleted.VV.Descends(put.VV), "the delete's vector %v lost the context %v", deleted.VV, put.VV)

	// A put with the context of a read of the deleted key replaces the
	// tombstone instead of sitting beside it.
	again := mustUpdate(deleted.Update(deleted.VV, "a", []byte("z"), false, 3))
	require.True(t, again.Found())
	require.Equal(t, []Sibling{{Dot: Dot{Actor: "a", Counter: 2}, Value: []byte("z"), WrittenAt: 3}}, again.Siblings)
}

// TestSync replays small histories between two replicas, A (actor "a") and B
// (actor "b"), and checks the merge both ways round.
func TestSync(t *testing.T) {
	put := func(o Object, ctx VV, actor, value string) Object {
		return mustUpdate(o.Update(ctx, actor, []byte(value), false, 0))
	}
	x := put(Object{}, nil, "a", "x") // A: [a1=x]
	xOnB := Sync(Object{}, x)         // replicated to B
	zOnB := put(xOnB, x.VV, "b", "z") // a client read x, wrote z through B
	tests := []struct {
		name string
		a, b Object
		want Object
	}{{
		name: "two puts without context on different replicas become siblings",
		a:    x,
		b:    put(Object{}, nil, "b", "y"),
		want: obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")),
	}, {
		name: "two puts without context on one replica stay siblings",
		a:    put(x, nil, "a", "y"),
		b:    xOnB,
		want: obj(VV{"a": 2}, sib("a", 1, "x"), sib("a", 2, "y")),
	}, {
		name: "a put with context replaces what it saw on the other replica",
		a:    x,
		b:    zOnB,
		want: obj(VV{"a": 1, "b": 1}, sib("b", 1, "z")),
	}, {
		name: "a write concurrent with a read-modify-write survives it",
		a:    put(x, nil, "a", "y"),
		b:    zOnB,
		want: obj(VV{"a": 2, "b": 1}, sib("a", 2, "y"), sib("b", 1, "z")),
	}, {
		name: "a delete with context wins over what it saw, and keeps the vector",
		a:    x,
		b:    mustUpdate(xOnB.Update(x.VV, "b", nil, true, 0)),
		want: obj(VV{"a": 1, "b": 1}, tomb("b", 1)),
	}, {
		name: "a stale copy changes nothing",
		a:    x,
		b:    put(x, x.VV, "a", "y"),
		want: obj(VV{"a": 2}, sib("a", 2, "y")),
	}, {
		name: "the empty object changes nothing",
		a:    Object{},
		b:    zOnB,
		want: zOnB,
	}, {
		name: "two empty objects stay empty",
		want: Object{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := deepCopy(tt.a), deepCopy(tt.b)
			for _, got := range []Object{Sync(tt.a, tt.b), Sync(tt.b, tt.a)} {
				require.Equal(t, canonical(tt.want), canonical(got), "got %s", describe(got))
				require.True(t, sortedByDot(got), "siblings out of order: %s", describe(got))
				require.True(t, got.Equal(tt.want))
				require.Equal(t, tt.want.Empty(), got.Empty())
			}
			require.Equal(t, a, tt.a, "Sync changed its first argument")
			require.Equal(t, b, tt.b, "Sync changed its second argument")
		})
	}
}

func TestDescendsAndEqual(t *testing.T) {
	tests := []struct {
		name   string
		a, b   Object
		aDescB bool
		bDescA bool
	}{{
		name: "empty and empty", aDescB: true, bDescA: true,
	}, {
		name:   "any object and empty",
		a:      obj(VV{"a": 1}, sib("a", 1, "x")),
		aDescB: true,
	}, {
		name:   "a put with context and what it replaced",
		a:      obj(VV{"a": 2}, sib("a", 2, "y")),
		b:      obj(VV{"a": 1}, sib("a", 1, "x")),
		aDescB: true,
	}, {
		name:   "a put without context and what it stands beside",
		a:      obj(VV{"a": 2}, sib("a", 1, "x"), sib("a", 2, "y")),
		b:      obj(VV{"a": 1}, sib("a", 1, "x")),
		aDescB: true,
	}, {
		name: "concurrent puts",
		a:    obj(VV{"a": 1}, sib("a", 1, "x")),
		b:    obj(VV{"b": 1}, sib("b", 1, "y")),
	}, {
		name:   "the merge of concurrent puts and one of them",
		a:      obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")),
		b:      obj(VV{"b": 1}, sib("b", 1, "y")),
		aDescB: true,
	}, {
		name:   "a replacement seen elsewhere and the merge it replaced",
		a:      obj(VV{"a": 1, "b": 2}, sib("b", 2, "z")),
		b:      obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")),
		aDescB: true,
	}, {
		name:   "the same object in another sibling order with a zero counter",
		a:      obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")),
		b:      obj(VV{"a": 1, "b": 1, "c": 0}, sib("b", 1, "y"), sib("a", 1, "x")),
		aDescB: true,
		bDescA: true,
	}, {
		// No history produces the objects below (on reachable objects
		// Descends reduces to the vectors' order), but a corrupted or
		// hand-made copy must still be told apart: Descends means that
		// syncing the other copy in changes nothing.
		name:   "same vector, one copy still holding a sibling the vector says was replaced",
		a:      obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")),
		b:      obj(VV{"a": 1, "b": 1}, sib("b", 1, "y")),
		bDescA: true,
	}, {
		name:   "same siblings, one vector ahead",
		a:      obj(VV{"a": 1, "b": 1}, sib("a", 1, "x")),
		b:      obj(VV{"a": 1}, sib("a", 1, "x")),
		aDescB: true,
	}, {
		name: "a sibling its own vector does not cover",
		a:    obj(VV{"b": 1}),
		b:    obj(nil, sib("b", 2, "y")),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.aDescB, tt.a.Descends(tt.b), "a.Descends(b)")
			require.Equal(t, tt.bDescA, tt.b.Descends(tt.a), "b.Descends(a)")
			equal := tt.aDescB && tt.bDescA
			require.Equal(t, equal, tt.a.Equal(tt.b), "a.Equal(b)")
			require.Equal(t, equal, tt.b.Equal(tt.a), "b.Equal(a)")
			// Descends promises that syncing in what it descends changes nothing.
			require.Equal(t, tt.aDescB, Sync(tt.a, tt.b).Equal(tt.a), "Sync(a, b).Equal(a)")
			require.Equal(t, tt.bDescA, Sync(tt.a, tt.b).Equal(tt.b), "Sync(a, b).Equal(b)")
		})
	}
}

func TestFoundEmptyLive(t *testing.T) {
	tests := []struct {
		name  string
		o     Object
		found bool
		empty bool
		live  []Sibling
	}{
		{name: "zero object", empty: true},
		{name: "one value", o: obj(VV{"a": 1}, sib("a", 1, "x")), found: true, live: []Sibling{sib("a", 1, "x")}},
		{name: "only tombstones", o: obj(VV{"a": 1, "b": 1}, tomb("a", 1), tomb("b", 1))},
		{name: "a value beside a tombstone", o: obj(VV{"a": 1, "b": 1}, sib("a", 1, "x"), tomb("b", 1)), found: true, live: []Sibling{sib("a", 1, "x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.found, tt.o.Found())
			require.Equal(t, tt.empty, tt.o.Empty())
			require.Equal(t, tt.live, tt.o.Live())
		})
	}
}

func TestVV(t *testing.T) {
	v := VV{"a": 2, "b": 1}
	require.True(t, v.Covers(Dot{Actor: "a", Counter: 2}))
	require.False(t, v.Covers(Dot{Actor: "a", Counter: 3}))
	require.False(t, v.Covers(Dot{Actor: "c", Counter: 1}))
	require.True(t, VV(nil).Covers(Dot{Actor: "a", Counter: 0}), "counter 0 names no write, so everything covers it")

	require.True(t, v.Descends(VV{"a": 1}))
	require.True(t, v.Descends(nil))
	require.False(t, v.Descends(VV{"c": 1}))
	require.False(t, VV(nil).Descends(v))

	merged := v.Merge(VV{"a": 1, "c": 3})
	require.Equal(t, VV{"a": 2, "b": 1, "c": 3}, merged)
	merged["a"] = 9
	require.Equal(t, uint64(2), v["a"], "Merge shares its result with its receiver")
	require.Equal(t, VV{}, VV(nil).Merge(nil))

	clone := v.Clone()
	clone["a"] = 9
	require.Equal(t, uint64(2), v["a"], "Clone shares memory")
	require.Nil(t, VV(nil).Clone())

	require.True(t, VV{"a": 1, "b": 0}.Equal(VV{"a": 1}), "a zero counter equals a missing entry")
	require.False(t, VV{"a": 1}.Equal(VV{"a": 2}))
}

func TestDotCompare(t *testing.T) {
	tests := []struct {
		a, b Dot
		want int
	}{
		{Dot{"a", 1}, Dot{"a", 1}, 0},
		{Dot{"a", 1}, Dot{"a", 2}, -1},
		{Dot{"a", 10}, Dot{"a", 9}, 1},
		{Dot{"a", 9}, Dot{"b", 1}, -1},
		{Dot{"b", 1}, Dot{"a", 9}, 1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.a.Compare(tt.b), "%v.Compare(%v)", tt.a, tt.b)
	}
}

func sortedByDot(o Object) bool {
	return slices.IsSortedFunc(o.Siblings, func(x, y Sibling) int { return x.Dot.Compare(y.Dot) })
}

// mustUpdate takes Update in a history whose counters cannot come near the
// end of their range, so an error is a bug in the test.
func mustUpdate(o Object, err error) Object {
	if err != nil {
		panic(err)
	}
	return o
}

// TestUpdateRefusesToPassMaxCounter: a dot is never minted above
// MaxCounter, so a counter can never wrap to 0 (a dot every vector
// covers); the refusal changes nothing.
func TestUpdateRefusesToPassMaxCounter(t *testing.T) {
	local := obj(VV{"a": 3}, sib("a", 3, "x"))
	tests := []struct {
		name  string
		local Object
		ctx   VV
	}{
		{name: "context at the last counter for the actor", local: local, ctx: VV{"a": MaxCounter}},
		{name: "context at 2^64-1 for the actor", local: local, ctx: VV{"a": math.MaxUint64}},
		{name: "context past the range for another actor", local: local, ctx: VV{"b": 1 << 63}},
		{name: "local copy at the last counter", local: obj(VV{"a": MaxCounter}, sib("a", MaxCounter, "x"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, ctx := deepCopy(tt.local), tt.ctx.Clone()
			got, err := tt.local.Update(tt.ctx, "a", []byte("y"), false, 0)
			require.ErrorIs(t, err, ErrCounterOverflow)
			require.True(t, got.Empty(), "a refused update returns no object: %s", describe(got))
			require.Equal(t, before, tt.local)
			require.Equal(t, ctx, tt.ctx)
		})
	}
	// One below the last counter mints the last one.
	got, err := obj(VV{"a": MaxCounter - 1}, sib("a", MaxCounter-1, "x")).Update(nil, "a", []byte("y"), false, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(MaxCounter), got.VV["a"])
}

func TestExceedsAndClamp(t *testing.T) {
	tests := []struct {
		name  string
		ctx   VV
		local VV
		actor string // "" when the context exceeds nothing
		clamp VV
	}{
		{name: "empty context", local: VV{"a": 1}, clamp: VV{}},
		{name: "context equal to the copy", ctx: VV{"a": 2, "b": 1}, local: VV{"a": 2, "b": 1}, clamp: VV{"a": 2, "b": 1}},
		{name: "context behind the copy", ctx: VV{"a": 1}, local: VV{"a": 2, "b": 1}, clamp: VV{"a": 1}},
		{name: "zero entry for an unknown actor", ctx: VV{"z": 0}, local: VV{"a": 1}, clamp: VV{}},
		{name: "ahead for one actor", ctx: VV{"a": 1, "b": 5}, local: VV{"a": 2, "b": 3}, actor: "b", clamp: VV{"a": 1, "b": 3}},
		{name: "unknown actor", ctx: VV{"a": 1, "z": 1}, local: VV{"a": 1}, actor: "z", clamp: VV{"a": 1}},
		{name: "ahead for several: the first by name", ctx: VV{"c": 9, "b": 9, "d": 9}, local: VV{"b": 1, "c": 1}, actor: "b", clamp: VV{"b": 1, "c": 1}},
		{name: "empty copy", ctx: VV{"a": math.MaxUint64}, actor: "a", clamp: VV{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actor, ok := tt.ctx.Exceeds(tt.local)
			require.Equal(t, tt.actor != "", ok)
			require.Equal(t, tt.actor, actor)
			require.Equal(t, !ok, tt.local.Descends(tt.ctx), "Exceeds is the negation of Descends")
			clamped := tt.ctx.Clamp(tt.local)
			require.Equal(t, tt.clamp, clamped)
			_, still := clamped.Exceeds(tt.local)
			require.False(t, still, "a clamped context exceeds nothing")
		})
	}
	ctx, local := VV{"a": 1, "b": 1}, VV{"a": 2, "b": 1}
	require.Zero(t, testing.AllocsPerRun(100, func() { ctx.Exceeds(local) }), "the common case allocates nothing")
}

func TestValidate(t *testing.T) {
	good := []Object{
		{},
		obj(VV{"a": 1}, sib("a", 1, "x")),
		obj(VV{"a": 3, "b": 1}, sib("a", 2, "x"), sib("a", 3, "y"), tomb("b", 1)),
		obj(VV{"a": 3, "b": 1}),                                     // everything replaced
		obj(VV{"a": MaxCounter}, sib("a", MaxCounter, "x")),         // the last counter
		obj(VV{"a": 1, "b": 1}, sib("b", 1, "y"), sib("a", 1, "x")), // unsorted, no duplicate
		obj(VV{"a": 1, "z": 0}, sib("a", 1, "x")),                   // a zero entry says nothing
	}
	for _, o := range good {
		require.NoError(t, o.Validate(), describe(o))
	}
	bad := []struct {
		o    Object
		want string
	}{
		{obj(VV{"a": 1}, sib("a", 0, "x")), "dot a:0; counters start at 1"},
		{obj(VV{"a": math.MaxUint64}, sib("a", 1<<63, "x")), "above"},
		{obj(VV{"a": 1, "b": 1 << 63}, sib("a", 1, "x")), `counter 9223372036854775808 for actor "b"`},
		{obj(VV{"a": 1}, sib("a", 2, "x")), "does not cover"},
		{obj(nil, sib("a", 1, "x")), "does not cover"},
		{obj(VV{"a": 2}, sib("a", 1, "x"), sib("a", 1, "y")), "two siblings share dot a:1"},
		{obj(VV{"a": 2, "b": 1}, sib("a", 1, "x"), sib("b", 1, "z"), sib("a", 1, "y")), "two siblings share dot a:1"},
		{obj(VV{"": 1}, sib("", 1, "x")), "empty actor"},
	}
	for _, tt := range bad {
		before := deepCopy(tt.o)
		require.ErrorContains(t, tt.o.Validate(), tt.want, describe(tt.o))
		require.Equal(t, before, tt.o, "Validate changed the object")
	}
}
