package mpcheck

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

type sample struct {
	Name   string            `msgpack:"n"`
	Data   []byte            `msgpack:"d"`
	List   []uint64          `msgpack:"l"`
	Counts map[string]uint64 `msgpack:"c"`
	Inner  *sample           `msgpack:"i"`
	F      float64           `msgpack:"f"`
	Neg    int64             `msgpack:"x"`
}

func TestCheckAcceptsWhatTheLibraryWrites(t *testing.T) {
	values := []any{
		nil, true, false, 0, 127, 128, 1 << 20, -1, -33, -1 << 40, 1.5, float32(2.5), "", "hi",
		string(make([]byte, 300)), string(make([]byte, 70000)), []byte{}, make([]byte, 300),
		make([]byte, 70000), []int{1, 2, 3}, make([]int, 20), make([]int, 70000)[:20],
		map[string]int{"a": 1}, sample{Name: "x", Data: []byte{1}, List: []uint64{1, 1 << 40},
			Counts: map[string]uint64{"n1": 3}, Inner: &sample{Name: "y"}, F: 3.25, Neg: -7},
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, Check(b, DefaultLimits()), "%T %v", v, b[:min(len(b), 16)])
	}
	var back sample
	b, _ := msgpack.Marshal(values[len(values)-1])
	require.NoError(t, Unmarshal(b, &back))
	require.Equal(t, values[len(values)-1], back)
}

func TestCheckRejectsHostileInput(t *testing.T) {
	cases := map[string][]byte{
		"empty":                   {},
		"truncated uint32":        {0xce, 0, 0},
		"str32 of 4 GiB":          {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		"bin32 beyond input":      {0xc6, 0, 0, 1, 0, 1, 2, 3},
		"bin8 beyond input":       {0xc4, 5, 1, 2},
		"array32 of billions":     {0xdd, 0x7f, 0xff, 0xff, 0xff, 1, 2},
		"map32 of billions":       {0xdf, 0x7f, 0xff, 0xff, 0xff, 1, 2},
		"map16 needs pairs":       {0xde, 0, 3, 1, 2, 3, 4, 5},
		"fixarray short":          {0x93, 1, 2},
		"fixstr short":            {0xa5, 'a'},
		"never-used code":         {0xc1},
		"extension":               {0xd4, 1, 1},
		"ext32":                   {0xc9, 0, 0, 0, 1, 5, 0},
		"trailing byte":           {0x01, 0x02},
		"length header truncated": {0xda, 0x01},
	}
	for name, b := range cases {
		err := Check(b, DefaultLimits())
		require.Error(t, err, name)
		require.True(t, errors.Is(err, ErrMalformed), name)
		var v any
		require.Error(t, Unmarshal(b, &v), name)
	}
}

func TestCheckLimits(t *testing.T) {
	nested := []byte{}
	for range 20 {
		nested = append(nested, 0x91)
	}
	nested = append(nested, 0x01)
	require.ErrorIs(t, Check(nested, DefaultLimits()), ErrMalformed)
	require.NoError(t, Check(nested, Limits{MaxDepth: 21, MaxElements: 100}))

	wide, err := msgpack.Marshal(make([]int, 100))
	require.NoError(t, err)
	require.ErrorIs(t, Check(wide, Limits{MaxDepth: 4, MaxElements: 99}), ErrMalformed)
	require.NoError(t, Check(wide, Limits{MaxDepth: 4, MaxElements: 100}))
}

// FuzzUnmarshal holds the package to its promise: no panic, and no input of
// at most 64 bytes makes decoding allocate more than 1 MiB.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{sample{Name: "a", Counts: map[string]uint64{"x": 1}}, []any{1, "a", []byte{2}}, "s"} {
		b, _ := msgpack.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte{0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var s sample
		_ = Unmarshal(b, &s)
		var anyv any
		_ = Unmarshal(b, &anyv)
		runtime.ReadMemStats(&after)
		if len(b) <= 64 && after.TotalAlloc-before.TotalAlloc > 1<<20 {
			t.Fatalf("%d-byte input allocated %d bytes", len(b), after.TotalAlloc-before.TotalAlloc)
		}
	})
}

func TestMeasureStopsAfterTheFirstValue(t *testing.T) {
	v, err := msgpack.Marshal(map[string]any{"a": []int{1, 2, 3}, "b": "x"})
	require.NoError(t, err)
	size, elements, err := Measure(append(append([]byte{}, v...), 0xc1, 0xff), DefaultLimits())
	require.NoError(t, err, "what follows the value is not looked at")
	require.Equal(t, len(v), size)
	require.Equal(t, 4+3, elements, "two map entries count two each, plus three array items")

	_, _, err = Measure(v, Limits{MaxDepth: 1, MaxElements: 100})
	require.ErrorIs(t, err, ErrMalformed, "the array nests at depth 2")
	_, _, err = Measure(v, Limits{MaxDepth: 2, MaxElements: 6})
	require.ErrorIs(t, err, ErrMalformed, "seven elements")
	_, _, err = Measure(v[:len(v)-1], DefaultLimits())
	require.ErrorIs(t, err, ErrMalformed, "truncated")
}
