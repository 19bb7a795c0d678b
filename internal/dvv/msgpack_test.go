package dvv

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/internal/mpcodec"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// The hand-written object codec against the library's, which it replaced
// in the replica messages and on disk.

func libraryEncode(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	require.NoError(t, enc.Encode(v))
	return buf.Bytes()
}

func readObject(b []byte, lim mpcheck.Limits) (Object, error) {
	r := mpcodec.NewReader(b, lim)
	var o Object
	err := o.ReadMsgpack(&r, 1)
	if err == nil {
		err = r.End()
	}
	return o, err
}

// genObject draws any object a peer might send: siblings in any order,
// values nil, empty or not, counters and times of every width, a vector
// that may be nil or empty (but holds no zero counter: those decode as
// missing).
func genObject() *rapid.Generator[Object] {
	return rapid.Custom(func(t *rapid.T) Object {
		actor := rapid.OneOf(rapid.SampledFrom([]string{"n1.00", "n2.ff", ""}), rapid.String())
		var o Object
		if rapid.Bool().Draw(t, "hasVV") {
			o.VV = rapid.MapOfN(actor, rapid.OneOf(rapid.Uint64Range(1, 300), rapid.Uint64Min(1)), 0, 20).Draw(t, "vv")
		}
		if rapid.Bool().Draw(t, "hasSiblings") {
			o.Siblings = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Sibling {
				var v []byte
				if !rapid.Bool().Draw(t, "nil") {
					v = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "value")
				}
				return Sibling{Dot: Dot{Actor: actor.Draw(t, "actor"), Counter: rapid.Uint64().Draw(t, "counter")},
					Value: v, Tombstone: rapid.Bool().Draw(t, "tombstone"), WrittenAt: rapid.Int64().Draw(t, "writtenAt")}
			}), 0, 20).Draw(t, "siblings")
		}
		return o
	})
}

func TestObjectCodecMatchesLibrary(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		o := genObject().Draw(rt, "object")
		lib := libraryEncode(t, o)
		require.Equal(t, lib, o.AppendMsgpack(nil), "the hand-written encoder writes the library's bytes")

		var fromHand Object
		require.NoError(t, mpcheck.Unmarshal(o.AppendMsgpack(nil), &fromHand))
		require.Equal(t, o, fromHand, "the library reads the hand-written bytes")
		back, err := readObject(lib, mpcheck.DefaultLimits())
		require.NoError(t, err)
		require.Equal(t, o, back, "the hand-written decoder reads the library's bytes")

		vv := libraryEncode(t, o.VV)
		require.Equal(t, vv, o.VV.AppendMsgpack(nil))
		r := mpcodec.NewReader(vv, mpcheck.DefaultLimits())
		var got VV
		require.NoError(t, got.ReadMsgpack(&r, 1))
		require.Equal(t, o.VV, got)
	})
}

func TestVectorDecodingRules(t *testing.T) {
	read := func(b []byte) (VV, error) {
		r := mpcodec.NewReader(b, mpcheck.DefaultLimits())
		var v VV
		err := v.ReadMsgpack(&r, 1)
		return v, err
	}
	v, err := read([]byte{0x82, 0xa1, 'a', 0x00, 0xa1, 'b', 0x01})
	require.NoError(t, err)
	require.Equal(t, VV{"b": 1}, v, "a zero counter is no entry")
	_, err = read([]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02})
	require.ErrorIs(t, err, mpcodec.ErrInvalid, "an actor named twice")
	_, err = read([]byte{0x81, 0xa1, 'a', 0xff})
	require.ErrorIs(t, err, mpcodec.ErrInvalid, "a negative counter")
	v, err = read([]byte{0xc0})
	require.NoError(t, err)
	require.Nil(t, v)
}

// FuzzReadObject: whatever the hand-written decoder accepts, mpcheck and
// the library accept too (under the store's limits) and read as the same
// object; no input of at most 64 bytes allocates more than 1 MiB.
func FuzzReadObject(f *testing.F) {
	one := mustUpdate(Object{}.Update(nil, "n1.0123456789abcdef", []byte("hello"), false, 1700000000000000000))
	f.Add(one.AppendMsgpack(nil))
	f.Add(Sync(one, mustUpdate(Object{}.Update(nil, "n2.ff", nil, true, -1))).AppendMsgpack(nil))
	f.Add([]byte{0x81, 0xa1, 's', 0xdd, 0x00, 0x00, 0xff, 0xff, 0xc0})
	f.Add([]byte{0x81, 0xa2, 'v', 'v', 0xdf, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := mpcheck.Limits{MaxDepth: 16, MaxElements: len(b) + 1}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		o, err := readObject(b, lim)
		runtime.ReadMemStats(&after)
		if len(b) <= 64 && after.TotalAlloc-before.TotalAlloc > 1<<20 {
			t.Fatalf("%d-byte input allocated %d bytes", len(b), after.TotalAlloc-before.TotalAlloc)
		}
		if err != nil {
			return
		}
		var lib Object
		require.NoError(t, mpcheck.UnmarshalLimits(b, &lib, lim), "accepted what the library path refuses")
		require.Equal(t, lib, o)
		again, err := readObject(o.AppendMsgpack(nil), mpcheck.DefaultLimits())
		require.NoError(t, err)
		require.Equal(t, o, again)
	})
}

// MsgpackSize and MsgpackElements are exactly what the encoding holds.
func TestObjectSizeAndElementsAreExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := genObject().Draw(t, "object")
		b := o.AppendMsgpack(nil)
		require.Equal(t, len(b), o.MsgpackSize())
		size, elements, err := mpcheck.Measure(b, mpcheck.Limits{MaxDepth: 16, MaxElements: 1 << 20})
		require.NoError(t, err)
		require.Equal(t, len(b), size)
		require.Equal(t, elements, o.MsgpackElements())
	})
}
