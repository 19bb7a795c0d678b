package mpcodec

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"testing"

	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

func library(t *rapid.T, write func(*msgpack.Encoder) error) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := write(enc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The appenders write what the library writes, for every width.
func TestAppendersWriteTheLibrarysBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := rapid.OneOf(rapid.Uint64Range(0, 70000), rapid.Uint64()).Draw(t, "u")
		i := rapid.OneOf(rapid.Int64Range(-70000, 70000), rapid.Int64()).Draw(t, "i")
		n := rapid.OneOf(rapid.IntRange(0, 70000), rapid.IntRange(0, 20)).Draw(t, "n")
		s := string(bytes.Repeat([]byte{'s'}, n))
		bin := bytes.Repeat([]byte{'b'}, n)
		flag := rapid.Bool().Draw(t, "flag")
		want := library(t, func(e *msgpack.Encoder) error {
			return errors.Join(e.EncodeUint(u), e.EncodeInt(i), e.EncodeString(s), e.EncodeBytes(bin), e.EncodeBytes(nil),
				e.EncodeMapLen(n), e.EncodeArrayLen(n), e.EncodeBool(flag), e.EncodeNil())
		})
		got := AppendUint([]byte{}, u)
		got = AppendInt(got, i)
		got = AppendString(got, s)
		got = AppendBytes(got, bin)
		got = AppendBytes(got, nil)
		got = AppendMapLen(got, n)
		got = AppendArrayLen(got, n)
		got = AppendBool(got, flag)
		got = AppendNil(got)
		require.Equal(t, want, got)
	})
}

// walk reads any one value with the typed readers, choosing by its first
// byte, as a decoder built on them would.
func walk(r *Reader, level int) error {
	if len(r.b) == 0 {
		return malformed("truncated")
	}
	c := r.b[0]
	switch {
	case c <= 0x7f, c >= 0xe0, c >= 0xcc && c <= 0xd3:
		_, _, err := r.integer()
		return err
	case c == codeNil:
		r.b = r.b[1:]
		return nil
	case c == codeTrue, c == codeFalse:
		_, err := r.Bool()
		return err
	case c >= 0x80 && c <= 0x8f, c == codeMap16, c == codeMap32:
		n, err := r.MapLen(level)
		for i := 0; err == nil && i < 2*n; i++ {
			err = walk(r, level+1)
		}
		return err
	case c >= 0x90 && c <= 0x9f, c == codeArr16, c == codeArr32:
		n, err := r.ArrayLen(level)
		for i := 0; err == nil && i < n; i++ {
			err = walk(r, level+1)
		}
		return err
	case c == 0xca, c == 0xcb:
		// Floats have no typed reader; Skip is what a decoder uses.
		return r.Skip(level)
	}
	_, err := r.Bytes()
	return err
}

// FuzzReaderAgreesWithCheck: the typed readers accept exactly the inputs
// mpcheck.Check accepts, under the same limits, and no input of at most 64
// bytes makes them allocate more than 1 MiB (they allocate nothing at all).
func FuzzReaderAgreesWithCheck(f *testing.F) {
	f.Add([]byte{0x93, 0x01, 0xa1, 'x', 0xc4, 0x01, 0xff}, 16, 100)
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, 16, 100)
	f.Add([]byte{0x81, 0xa1, 'k', 0x91, 0x91, 0x01}, 2, 100)
	f.Add([]byte{0x82, 0x01, 0x02, 0x03, 0x04}, 16, 3)
	f.Add([]byte{0xd4, 0x01, 0x01}, 16, 100)
	f.Add([]byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, 16, 100)
	f.Fuzz(func(t *testing.T, b []byte, depth, elements int) {
		lim := mpcheck.Limits{MaxDepth: depth % 40, MaxElements: elements}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewReader(b, lim)
		err := walk(&r, 1)
		if err == nil {
			err = r.End()
		}
		runtime.ReadMemStats(&after)
		if len(b) <= 64 && after.TotalAlloc-before.TotalAlloc > 1<<20 {
			t.Fatalf("%d-byte input allocated %d bytes", len(b), after.TotalAlloc-before.TotalAlloc)
		}
		want := mpcheck.Check(b, lim)
		if (err == nil) != (want == nil) {
			t.Fatalf("reader says %v, mpcheck says %v", err, want)
		}
		if err != nil {
			require.ErrorIs(t, err, mpcheck.ErrMalformed, "a value of any type is never of the wrong shape")
		}
	})
}

func TestIntegerRanges(t *testing.T) {
	read := func(b []byte) *Reader {
		r := NewReader(b, mpcheck.DefaultLimits())
		return &r
	}
	for _, c := range []struct {
		in       []byte
		max      uint64
		want     uint64
		rejected bool
	}{
		{[]byte{0x05}, 10, 5, false},
		{[]byte{0xc0}, 10, 0, false},
		{[]byte{0xd3, 0, 0, 0, 0, 0, 0, 0, 7}, 10, 7, false},
		{[]byte{0xcd, 0, 11}, 10, 0, true},
		{[]byte{0xff}, math.MaxUint64, 0, true},
		{[]byte{0xd0, 0x80}, math.MaxUint64, 0, true},
		{[]byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, math.MaxUint64, math.MaxUint64, false},
		{[]byte{0xca, 0, 0, 0, 0}, 10, 0, true},
	} {
		got, err := read(c.in).Uint(c.max)
		if c.rejected {
			require.ErrorIs(t, err, ErrInvalid, "% x", c.in)
			continue
		}
		require.NoError(t, err, "% x", c.in)
		require.Equal(t, c.want, got, "% x", c.in)
	}
	v, err := read([]byte{0xd1, 0x80, 0x00}).Int(math.MinInt16, 0)
	require.NoError(t, err)
	require.Equal(t, int64(math.MinInt16), v)
	_, err = read([]byte{0xd1, 0x80, 0x00}).Int(math.MinInt16+1, 0)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = read([]byte{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}).Int(math.MinInt64, math.MaxInt64)
	require.ErrorIs(t, err, ErrInvalid, "2^63 is not an int64")
}

func TestBytesNilEmptyAndAliasing(t *testing.T) {
	in := []byte{0xc0, 0xc4, 0x00, 0xa0, 0xc4, 0x02, 'a', 'b', 0xa1, 'c'}
	r := NewReader(in, mpcheck.DefaultLimits())
	b, err := r.Bytes()
	require.NoError(t, err)
	require.Nil(t, b)
	for range 2 {
		b, err = r.Bytes()
		require.NoError(t, err)
		require.NotNil(t, b)
		require.Empty(t, b)
	}
	b, err = r.Bytes()
	require.NoError(t, err)
	require.Equal(t, []byte("ab"), b)
	require.Equal(t, 2, cap(b), "an append cannot reach the next value")
	require.Same(t, &in[6], &b[0], "the bytes alias the input")
	s, err := r.String()
	require.NoError(t, err)
	require.Equal(t, "c", s)
	require.NoError(t, r.End())
}

func TestFields(t *testing.T) {
	names := []string{"a", "b"}
	decode := func(in []byte) (got map[string]int64, isNil bool, err error) {
		r := NewReader(in, mpcheck.DefaultLimits())
		got = map[string]int64{}
		isNil, err = r.Fields(1, names, func(i int) error {
			v, err := r.Int(math.MinInt64, math.MaxInt64)
			got[names[i]] = v
			return err
		})
		if err == nil {
			err = r.End()
		}
		return got, isNil, err
	}
	got, isNil, err := decode([]byte{0x83, 0xa1, 'b', 0x02, 0xa1, 'x', 0x92, 0x80, 0xc0, 0xc4, 0x01, 'a', 0x01})
	require.NoError(t, err)
	require.False(t, isNil)
	require.Equal(t, map[string]int64{"a": 1, "b": 2}, got, "unknown keys are skipped, bin keys match")
	_, isNil, err = decode([]byte{0xc0})
	require.NoError(t, err)
	require.True(t, isNil)
	_, _, err = decode([]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02})
	require.ErrorIs(t, err, ErrInvalid, "a field named twice")
	_, _, err = decode([]byte{0x92, 0x01, 0x02})
	require.ErrorIs(t, err, ErrInvalid, "an array is not a struct here")
	_, _, err = decode([]byte{0x81, 0x01, 0x01})
	require.ErrorIs(t, err, ErrInvalid, "keys are strings")
	_, _, err = decode([]byte{0x81, 0xa1, 'x', 0xd4, 0x01, 0x01})
	require.ErrorIs(t, err, mpcheck.ErrMalformed, "an unknown field is still checked")
	_, _, err = decode([]byte{0x81, 0xa1, 'a', 0xdb, 0xff, 0xff, 0xff, 0xff})
	require.ErrorIs(t, err, mpcheck.ErrMalformed, "a misplaced value that is also malformed is malformed")
}
