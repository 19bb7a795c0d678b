package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// genObject draws objects as dvv produces them: distinct dots, siblings in
// dot order, values that may be nil, empty or arbitrary, and a vector that
// may be nil.
func genObject() *rapid.Generator[dvv.Object] {
	return rapid.Custom(func(t *rapid.T) dvv.Object {
		actors := []string{"n1.00", "n2.ff", "n3.a1", "", "x"}
		var o dvv.Object
		if rapid.Bool().Draw(t, "hasVV") {
			o.VV = dvv.VV{}
			for _, a := range actors {
				if rapid.Bool().Draw(t, "vvHas"+a) {
					o.VV[a] = rapid.Uint64Min(1).Draw(t, "vv"+a)
				}
			}
		}
		seen := map[dvv.Dot]bool{}
		n := rapid.IntRange(0, 6).Draw(t, "siblings")
		if n > 0 || rapid.Bool().Draw(t, "emptyNotNil") {
			o.Siblings = []dvv.Sibling{}
		}
		for range n {
			d := dvv.Dot{
				Actor:   rapid.SampledFrom(actors).Draw(t, "actor"),
				Counter: rapid.Uint64Range(0, 1<<40).Draw(t, "counter"),
			}
			if seen[d] {
				continue
			}
			seen[d] = true
			var v []byte
			if !rapid.Bool().Draw(t, "nilValue") {
				v = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "value")
			}
			o.Siblings = append(o.Siblings, dvv.Sibling{
				Dot:       d,
				Value:     v,
				Tombstone: rapid.Bool().Draw(t, "tombstone"),
				WrittenAt: rapid.Int64().Draw(t, "writtenAt"),
			})
		}
		slices.SortFunc(o.Siblings, func(x, y dvv.Sibling) int { return x.Dot.Compare(y.Dot) })
		return o
	})
}

func TestObjectEncodingRoundTripsAndIsDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := genObject().Draw(t, "object")
		rec, err := encodeObject(o)
		require.NoError(t, err)
		require.Equal(t, objectFormatV1, rec[0])

		back, err := decodeObject(rec)
		require.NoError(t, err)
		require.Equal(t, o, back)

		// Map iteration order changes from one range to the next, so a
		// handful of encodings would differ if actors were not sorted.
		for range 5 {
			again, err := encodeObject(o)
			require.NoError(t, err)
			require.Equal(t, rec, again)
		}

		// Sibling order does not change the bytes.
		shuffled := o
		if len(o.Siblings) > 1 {
			shuffled.Siblings = rapid.Permutation(o.Siblings).Draw(t, "shuffled")
		}
		fromShuffled, err := encodeObject(shuffled)
		require.NoError(t, err)
		require.Equal(t, rec, fromShuffled)

	})
}

func TestEmptyValuesAndTombstonesRoundTrip(t *testing.T) {
	for name, o := range map[string]dvv.Object{
		"zero object":   {},
		"empty value":   mustUpdate(dvv.Object{}.Update(nil, "a", []byte{}, false, 1)),
		"nil value":     mustUpdate(dvv.Object{}.Update(nil, "a", nil, false, 1)),
		"tombstone":     mustUpdate(dvv.Object{}.Update(nil, "a", nil, true, 1)),
		"vv only":       {VV: dvv.VV{"a": 3}},
		"empty vv":      {VV: dvv.VV{}},
		"large value":   mustUpdate(dvv.Object{}.Update(nil, "a", bytes.Repeat([]byte{0xdb}, 1<<20), false, 1)),
		"binary actors": mustUpdate(dvv.Object{}.Update(nil, "\x00\xff", []byte("v"), false, -5)),
	} {
		rec, err := encodeObject(o)
		require.NoError(t, err, name)
		back, err := decodeObject(rec)
		require.NoError(t, err, name)
		require.Equal(t, o, back, name)
	}
}

func TestZeroVectorEntriesEncodeAsMissing(t *testing.T) {
	a, err := encodeObject(dvv.Object{VV: dvv.VV{"x": 0, "y": 2}})
	require.NoError(t, err)
	b, err := encodeObject(dvv.Object{VV: dvv.VV{"y": 2}})
	require.NoError(t, err)
	require.Equal(t, a, b)
}

func TestDecodeObjectRejectsBadRecords(t *testing.T) {
	good, err := encodeObject(mustUpdate(dvv.Object{}.Update(nil, "a", []byte("v"), false, 1)))
	require.NoError(t, err)
	cases := map[string]struct {
		rec  []byte
		want string
	}{
		"empty":               {nil, "empty object record"},
		"unknown version":     {append([]byte{2}, good[1:]...), "object format 2 is unknown"},
		"version zero":        {[]byte{0}, "object format 0 is unknown"},
		"no body":             {[]byte{objectFormatV1}, "truncated"},
		"truncated":           {good[:len(good)-1], "malformed msgpack"},
		"trailing byte":       {append(append([]byte{}, good...), 0), "trailing"},
		"str32 of 4 GiB":      {[]byte{objectFormatV1, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, "exceeds"},
		"array32 of billions": {[]byte{objectFormatV1, 0xdd, 0x7f, 0xff, 0xff, 0xff, 1}, "exceeds"},
		"wrong type":          {append([]byte{objectFormatV1}, mustMarshal(t, map[string]any{"s": "x"})...), "wrong shape"},
		"vv not a map":        {append([]byte{objectFormatV1}, mustMarshal(t, map[string]any{"vv": []int{1}})...), "wrong shape"},
	}
	for name, c := range cases {
		_, err := decodeObject(c.rec)
		require.ErrorIs(t, err, ErrCorrupt, name)
		require.ErrorContains(t, err, c.want, name)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

// FuzzDecodeObject holds decodeObject to what it promises for bytes read
// from a damaged disk: no panic, no input of at most 64 bytes allocating more
// than 1 MiB, and whatever decodes re-encodes to a fixed point.
func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte{objectFormatV1, 0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		o, err := decodeObject(rec)
		runtime.ReadMemStats(&after)
		if len(rec) <= 64 && after.TotalAlloc-before.TotalAlloc > 1<<20 {
			t.Fatalf("%d-byte record allocated %d bytes", len(rec), after.TotalAlloc-before.TotalAlloc)
		}
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		enc, err := encodeObject(o)
		require.NoError(t, err)
		o2, err := decodeObject(enc)
		require.NoError(t, err)
		enc2, err := encodeObject(o2)
		require.NoError(t, err)
		require.Equal(t, enc, enc2)
	})
}

// TestWriteFuzzSeedCorpus regenerates testdata/fuzz/FuzzDecodeObject when
// CAIRN_WRITE_FUZZ_CORPUS is set; otherwise it checks the committed corpus
// still holds the real encodings (so a change of format cannot leave the
// fuzzer starting from stale records).
func TestWriteFuzzSeedCorpus(t *testing.T) {
	seeds := fuzzSeeds(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeObject")
	if os.Getenv("CAIRN_WRITE_FUZZ_CORPUS") != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for name, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		}
	}
	for name, b := range seeds {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "seed %s missing: run with CAIRN_WRITE_FUZZ_CORPUS=1", name)
		require.Equal(t, fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b), string(got), name)
	}
}

func fuzzSeeds(t *testing.T) map[string][]byte {
	enc := func(o dvv.Object) []byte {
		b, err := encodeObject(o)
		require.NoError(t, err)
		return b
	}
	one := mustUpdate(dvv.Object{}.Update(nil, "n1.0123456789abcdef", []byte("hello"), false, 1700000000000000000))
	two := dvv.Sync(one, mustUpdate(dvv.Object{}.Update(nil, "n2.fedcba9876543210", nil, true, 1700000000000000001)))
	siblings := dvv.Object{}
	for i := range 5 {
		siblings = mustUpdate(siblings.Update(nil, fmt.Sprintf("n%d.00", i), []byte(strings.Repeat("v", i)), false, int64(i)))
	}
	lib, err := msgpack.Marshal(one)
	require.NoError(t, err)
	require.NoError(t, mpcheck.Check(lib, mpcheck.DefaultLimits()))
	return map[string][]byte{
		"real-zero":          enc(dvv.Object{}),
		"real-one":           enc(one),
		"real-tombstone":     enc(two),
		"real-siblings":      enc(siblings),
		"real-library":       append([]byte{objectFormatV1}, lib...),
		"hostile-str32":      {objectFormatV1, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		"hostile-bin32":      {objectFormatV1, 0xc6, 0xff, 0xff, 0xff, 0xff},
		"hostile-array32":    {objectFormatV1, 0x81, 0xa1, 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"hostile-map32":      {objectFormatV1, 0xdf, 0x7f, 0xff, 0xff, 0xff, 1, 2},
		"hostile-deep":       append([]byte{objectFormatV1}, bytes.Repeat([]byte{0x91}, 40)...),
		"hostile-version":    append([]byte{0x02}, enc(one)[1:]...),
		"hostile-wrong-type": {objectFormatV1, 0x81, 0xa2, 'v', 'v', 0x91, 0x01},
	}
}
