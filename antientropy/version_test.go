package antientropy

import (
	"slices"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

func sib(actor string, counter uint64, value string) dvv.Sibling {
	return dvv.Sibling{Dot: dvv.Dot{Actor: actor, Counter: counter}, Value: []byte(value)}
}

func tomb(actor string, counter uint64) dvv.Sibling {
	return dvv.Sibling{Dot: dvv.Dot{Actor: actor, Counter: counter}, Tombstone: true}
}

func obj(vv dvv.VV, siblings ...dvv.Sibling) dvv.Object {
	return dvv.Object{Siblings: siblings, VV: vv}
}

func TestVersion(t *testing.T) {
	base := obj(dvv.VV{"a": 2, "b": 1}, sib("a", 2, "x"), sib("b", 1, "y"))
	withTime := base
	withTime.Siblings = slices.Clone(base.Siblings)
	withTime.Siblings[0].WrittenAt = 12345
	tests := []struct {
		name  string
		a, b  dvv.Object
		equal bool
	}{
		{"same object", base, base, true},
		{"siblings in another order", base, obj(dvv.VV{"a": 2, "b": 1}, sib("b", 1, "y"), sib("a", 2, "x")), true},
		{"zero vector entries ignored", base, obj(dvv.VV{"a": 2, "b": 1, "c": 0}, sib("a", 2, "x"), sib("b", 1, "y")), true},
		{"written_at ignored", base, withTime, true},
		{"empty value and nil value alike", obj(dvv.VV{"a": 1}, sib("a", 1, "")), obj(dvv.VV{"a": 1}, dvv.Sibling{Dot: dvv.Dot{Actor: "a", Counter: 1}, Value: []byte{}}), true},
		{"another value", base, obj(dvv.VV{"a": 2, "b": 1}, sib("a", 2, "x"), sib("b", 1, "z")), false},
		{"another counter", base, obj(dvv.VV{"a": 2, "b": 1}, sib("a", 1, "x"), sib("b", 1, "y")), false},
		{"another actor", base, obj(dvv.VV{"a": 2, "b": 1, "c": 1}, sib("a", 2, "x"), sib("c", 1, "y")), false},
		{"a sibling fewer", base, obj(dvv.VV{"a": 2, "b": 1}, sib("a", 2, "x")), false},
		{"tombstone instead of value", obj(dvv.VV{"a": 1}, sib("a", 1, "")), obj(dvv.VV{"a": 1}, tomb("a", 1)), false},
		{"vector ahead", base, obj(dvv.VV{"a": 3, "b": 1}, sib("a", 2, "x"), sib("b", 1, "y")), false},
		{"vector has one more actor", base, obj(dvv.VV{"a": 2, "b": 1, "c": 4}, sib("a", 2, "x"), sib("b", 1, "y")), false},
		// Length prefixes keep field boundaries: moving bytes from the
		// actor into the value must change the digest.
		{"actor/value boundary", obj(dvv.VV{"ab": 1}, sib("ab", 1, "c")), obj(dvv.VV{"ab": 1}, dvv.Sibling{Dot: dvv.Dot{Actor: "a", Counter: 1}, Value: []byte("bc")}), false},
		{"vector without siblings differs from empty", obj(dvv.VV{"a": 1}), dvv.Object{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			va, vb := Version(tt.a), Version(tt.b)
			require.Equal(t, tt.equal, va == vb, "Version %016x vs %016x", va, vb)
		})
	}
}

func TestVersionAbsent(t *testing.T) {
	require.Equal(t, Absent, Version(dvv.Object{}))
	require.Equal(t, Absent, Version(obj(dvv.VV{"a": 0})), "an all-zero vector is the empty vector")
	require.NotEqual(t, Absent, Version(obj(dvv.VV{"a": 1}, tomb("a", 1))), "a tombstone is held, not absent")
}

// TestVersionDoesNotModify: Version sorts a copy of unsorted siblings, never
// the caller's object.
func TestVersionDoesNotModify(t *testing.T) {
	o := obj(dvv.VV{"a": 1, "b": 1}, sib("b", 1, "y"), sib("a", 1, "x"))
	Version(o)
	require.Equal(t, "b", o.Siblings[0].Dot.Actor)
}

func TestKeyHash(t *testing.T) {
	require.Zero(t, KeyHash("b", []byte("k"), Absent), "an absent key contributes nothing")
	require.NotEqual(t, KeyHash("ab", []byte("c"), 1), KeyHash("a", []byte("bc"), 1), "bucket is length-prefixed")
	require.NotEqual(t, KeyHash("b", []byte("k"), 1), KeyHash("b", []byte("k"), 2))
	require.NotEqual(t, KeyHash("b", []byte("k"), 1), KeyHash("b", []byte("j"), 1))
	require.Equal(t, KeyHash("b", []byte("k"), 7), KeyHash("b", []byte("k"), 7))
}

func TestCompareKeys(t *testing.T) {
	long := string(make([]byte, 200)) // uvarint(200) is two bytes: c8 01
	tests := []struct {
		a, b KeyVersion
		want int
	}{
		{KeyVersion{Bucket: "b", Key: []byte("k")}, KeyVersion{Bucket: "b", Key: []byte("k"), Version: 9}, 0},
		{KeyVersion{Bucket: "b", Key: []byte("j")}, KeyVersion{Bucket: "b", Key: []byte("k")}, -1},
		{KeyVersion{Bucket: "b", Key: []byte("k")}, KeyVersion{Bucket: "b", Key: []byte("k\x00")}, -1},
		{KeyVersion{Bucket: "a", Key: []byte("z")}, KeyVersion{Bucket: "b", Key: []byte("a")}, -1},
		// Shorter buckets first, whatever their bytes: the length prefix
		// comes first in the store's order.
		{KeyVersion{Bucket: "z"}, KeyVersion{Bucket: "aa"}, -1},
		{KeyVersion{Bucket: "", Key: []byte("zzz")}, KeyVersion{Bucket: "a"}, -1},
		// 200 encodes as c8 01, 127 as 7f: by bytes, 127 comes first.
		{KeyVersion{Bucket: string(make([]byte, 127))}, KeyVersion{Bucket: long}, -1},
		// 128 encodes as 80 01, 200 as c8 01: 128 first.
		{KeyVersion{Bucket: string(make([]byte, 128))}, KeyVersion{Bucket: long}, -1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, CompareKeys(tt.a, tt.b), "%q/%q vs %q/%q", tt.a.Bucket, tt.a.Key, tt.b.Bucket, tt.b.Key)
		require.Equal(t, -tt.want, CompareKeys(tt.b, tt.a))
		require.Equal(t, tt.want, cmpSign(encodeKey(tt.a.Bucket, tt.a.Key), encodeKey(tt.b.Bucket, tt.b.Key)), "agrees with the store's byte order")
	}
}

func cmpSign(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestShapeValidate(t *testing.T) {
	tests := []struct {
		shape Shape
		want  string // "" for valid
	}{
		{DefaultShape(), ""},
		{Shape{Segments: 1, Branches: 1}, ""},
		{Shape{Segments: MaxSegments, Branches: MaxSegments}, ""},
		{Shape{Segments: 2 * MaxSegments, Branches: 1}, "segments 131072"},
		{Shape{Segments: 1000, Branches: 8}, "segments 1000"},
		{Shape{Segments: 1024, Branches: 3}, "branches 3"},
		{Shape{Segments: 16, Branches: 32}, "at most segments"},
		{Shape{Segments: -4, Branches: -1}, "segments -4: want a power of two from 1 to 65536; branches -1"},
	}
	for _, tt := range tests {
		err := tt.shape.Validate()
		if tt.want == "" {
			require.NoError(t, err, "%v", tt.shape)
			continue
		}
		require.ErrorIs(t, err, cairn.ErrInvalidArgument)
		require.ErrorContains(t, err, tt.want)
	}
}

// TestSegmentOfSpreads checks that keys of one bucket fill every segment
// roughly evenly: a segment function that ignored some key bytes or reused
// the ring's bits would leave most segments empty.
func TestSegmentOfSpreads(t *testing.T) {
	shape := DefaultShape()
	counts := make([]int, shape.Segments)
	const keys = 64 * 1024
	for i := range keys {
		s := shape.SegmentOf("bucket", []byte{byte(i), byte(i >> 8), 'k'})
		require.True(t, s >= 0 && s < shape.Segments)
		counts[s]++
	}
	// 64 keys per segment expected; a fair hash stays within 64 ± 40 for
	// every one of 1024 segments (over 5 standard deviations).
	for s, c := range counts {
		require.True(t, c > 24 && c < 104, "segment %d holds %d keys", s, c)
	}
	require.Equal(t, 0, Shape{Segments: 1, Branches: 1}.SegmentOf("b", []byte("k")))
}
