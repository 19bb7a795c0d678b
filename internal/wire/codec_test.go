package wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// The reference for the hand-written codecs is the path they replace: the
// msgpack library's reflective encoder (compact integers, as AppendFrame
// used it) and, for decoding, mpcheck with the frame's limits followed by
// the library's decoder. None of the message types implements the
// library's encoder or decoder interfaces, so these go through reflection
// (and dvv.VV's own library methods).

func libraryEncode(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	require.NoError(t, enc.Encode(v))
	return buf.Bytes()
}

func libraryDecode(body []byte, v any) error {
	return mpcheck.UnmarshalLimits(body, v, bodyLimits)
}

func handDecode(body []byte, v any) error {
	ok, err := decodeHandCoded(body, v)
	if !ok {
		panic("not hand-coded")
	}
	return err
}

func newZero(v any) any { return reflect.New(reflect.TypeOf(v).Elem()).Interface() }

// TestHandCodecsMatchLibrary: for random messages, the hand-written
// encoder writes the library's bytes (so the library decodes them to the
// same value), and the hand-written decoder reads the library's bytes to
// the same value.
func TestHandCodecsMatchLibrary(t *testing.T) {
	for typ, gen := range handCodedMessages {
		t.Run(typ.String(), func(t *testing.T) {
			require.True(t, handCoded(typ))
			rapid.Check(t, func(rt *rapid.T) {
				msg := gen(rt)
				lib := libraryEncode(t, msg)
				hand := msg.(bodyAppender).appendBody(nil)
				require.Equal(t, lib, hand, "the hand-written encoder writes the library's bytes")

				fromHand := newZero(msg)
				require.NoError(t, libraryDecode(hand, fromHand))
				require.Equal(t, msg, fromHand, "the library reads the hand-written bytes")

				fromLib := newZero(msg)
				require.NoError(t, handDecode(lib, fromLib))
				require.Equal(t, msg, fromLib, "the hand-written decoder reads the library's bytes")

				id := genUint64("id").Draw(rt, "id")
				frame, err := AppendFrame([]byte("prefix"), id, typ, msg, DefaultMaxFrame)
				require.NoError(t, err)
				want := append([]byte("prefix"), 0, 0, 0, 0)
				want = append(want, 0x93)
				want = append(want, libraryEncode(t, id)...)
				want = append(want, libraryEncode(t, uint64(typ))...)
				want = append(want, lib...)
				binary.BigEndian.PutUint32(want[6:], uint32(len(want)-10))
				require.Equal(t, want, frame, "the frame is the library's too")
			})
		})
	}
}

// TestHandDecodersAcceptAnyEncoding: bytes another client might write for
// the same message (see scramble) decode to that message, as they do with
// the library.
func TestHandDecodersAcceptAnyEncoding(t *testing.T) {
	for typ, gen := range handCodedMessages {
		t.Run(typ.String(), func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				msg := gen(rt)
				body := scramble(rt, reflect.ValueOf(msg).Elem(), nil, 1)
				fromLib := newZero(msg)
				require.NoError(t, libraryDecode(body, fromLib), "% x", body)
				require.Equal(t, msg, fromLib, "the scrambler writes the message")
				fromHand := newZero(msg)
				require.NoError(t, handDecode(body, fromHand), "% x", body)
				require.Equal(t, msg, fromHand)
			})
		})
	}
}

// scramble writes v the way some other client might: fields in any order,
// zero fields left out or sent as nil, integers in any width that holds
// them, strings as bin and bytes as str, containers with wider headers
// than needed, and fields this version does not know, of any shape.
func scramble(t *rapid.T, v reflect.Value, b []byte, level int) []byte {
	switch v.Kind() {
	case reflect.Struct:
		return scrambleStruct(t, v, b, level)
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, 0xc0)
		}
		return scramble(t, v.Elem(), b, level)
	case reflect.Map:
		if v.IsNil() {
			return append(b, 0xc0)
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(x.String(), y.String()) })
		keys = rapid.Permutation(keys).Draw(t, "keyOrder")
		b = scrambleHeader(t, b, 0x80, 0xde, len(keys))
		for _, k := range keys {
			b = scrambleRaw(t, b, []byte(k.String()), true)
			b = scrambleInt(t, b, v.MapIndex(k).Uint(), false)
		}
		return b
	case reflect.Slice:
		if v.IsNil() {
			return append(b, 0xc0)
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return scrambleRaw(t, b, v.Bytes(), false)
		}
		b = scrambleHeader(t, b, 0x90, 0xdc, v.Len())
		for i := range v.Len() {
			b = scramble(t, v.Index(i), b, level+1)
		}
		return b
	case reflect.String:
		return scrambleRaw(t, b, []byte(v.String()), true)
	case reflect.Bool:
		if v.Bool() {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scrambleInt(t, b, uint64(v.Int()), v.Int() < 0)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scrambleInt(t, b, v.Uint(), false)
	}
	panic("scramble: unexpected kind " + v.Kind().String())
}

func scrambleStruct(t *rapid.T, v reflect.Value, b []byte, level int) []byte {
	var entries [][]byte
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("msgpack"), ",")
		f := v.Field(i)
		var e []byte
		switch {
		case f.IsZero() && rapid.Bool().Draw(t, "omitZero"):
			continue
		case f.IsZero() && rapid.Bool().Draw(t, "zeroAsNil"):
			e = append(scrambleRaw(t, nil, []byte(name), true), 0xc0)
		default:
			e = scramble(t, f, scrambleRaw(t, nil, []byte(name), true), level+1)
		}
		entries = append(entries, e)
	}
	for range rapid.IntRange(0, 2).Draw(t, "unknownFields") {
		key := []byte("x-" + rapid.StringN(0, 6, -1).Draw(t, "unknownKey"))
		entries = append(entries, junk(t, scrambleRaw(t, nil, key, true), level+1))
	}
	entries = rapid.Permutation(entries).Draw(t, "fieldOrder")
	b = scrambleHeader(t, b, 0x80, 0xde, len(entries))
	for _, e := range entries {
		b = append(b, e...)
	}
	return b
}

// junk is any well-formed value, nested at most three levels below level.
func junk(t *rapid.T, b []byte, level int) []byte {
	kinds := 6
	if level > 4 {
		kinds = 4 // scalars only
	}
	switch rapid.IntRange(0, kinds-1).Draw(t, "junk") {
	case 0:
		return append(b, 0xc0)
	case 1:
		v := genUint64("junkInt").Draw(t, "junkInt")
		if rapid.Bool().Draw(t, "junkNeg") {
			return scrambleInt(t, b, uint64(-int64(v>>1)-1), true)
		}
		return scrambleInt(t, b, v, false)
	case 2:
		return scrambleRaw(t, b, rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "junkBytes"), rapid.Bool().Draw(t, "junkStr"))
	case 3:
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(rapid.Float64().Draw(t, "junkFloat")))
	case 4:
		n := rapid.IntRange(0, 3).Draw(t, "junkArray")
		b = scrambleHeader(t, b, 0x90, 0xdc, n)
		for range n {
			b = junk(t, b, level+1)
		}
		return b
	}
	n := rapid.IntRange(0, 3).Draw(t, "junkMap")
	b = scrambleHeader(t, b, 0x80, 0xde, n)
	for range 2 * n {
		b = junk(t, b, level+1)
	}
	return b
}

// scrambleHeader writes a map or array header (fix code, or the 16-bit
// code; the 32-bit one follows it) in any width that holds n.
func scrambleHeader(t *rapid.T, b []byte, fix, code16 byte, n int) []byte {
	switch w := rapid.IntRange(0, 2).Draw(t, "headerWidth"); {
	case w == 0 && n < 16:
		return append(b, fix|byte(n))
	case w <= 1:
		return binary.BigEndian.AppendUint16(append(b, code16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, code16+1), uint32(n))
}

// scrambleRaw writes a str or a bin (either way; asStr only sets the
// preference) in any width that holds it.
func scrambleRaw(t *rapid.T, b, v []byte, asStr bool) []byte {
	if rapid.IntRange(0, 3).Draw(t, "otherRawType") == 0 {
		asStr = !asStr
	}
	n := len(v)
	w := rapid.IntRange(0, 3).Draw(t, "rawWidth")
	switch {
	case asStr && w == 0 && n < 32:
		b = append(b, 0xa0|byte(n))
	case w <= 1 && n <= math.MaxUint8:
		b = append(b, map[bool]byte{true: 0xd9, false: 0xc4}[asStr], byte(n))
	case w <= 2 && n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, map[bool]byte{true: 0xda, false: 0xc5}[asStr]), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, map[bool]byte{true: 0xdb, false: 0xc6}[asStr]), uint32(n))
	}
	return append(b, v...)
}

// scrambleInt writes an integer (v, or the int64 bits of a negative one)
// with any code whose range holds it.
func scrambleInt(t *rapid.T, b []byte, v uint64, neg bool) []byte {
	s := int64(v)
	type form struct {
		fits bool
		put  func([]byte) []byte
	}
	forms := []form{
		{!neg && v <= 0x7f, func(b []byte) []byte { return append(b, byte(v)) }},
		{neg && s >= -32, func(b []byte) []byte { return append(b, byte(s)) }},
		{!neg && v <= math.MaxUint8, func(b []byte) []byte { return append(b, 0xcc, byte(v)) }},
		{!neg && v <= math.MaxUint16, func(b []byte) []byte { return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v)) }},
		{!neg && v <= math.MaxUint32, func(b []byte) []byte { return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v)) }},
		{!neg, func(b []byte) []byte { return binary.BigEndian.AppendUint64(append(b, 0xcf), v) }},
		{(neg || v <= math.MaxInt8) && s >= math.MinInt8 && s <= math.MaxInt8, func(b []byte) []byte { return append(b, 0xd0, byte(s)) }},
		{(neg || v <= math.MaxInt16) && s >= math.MinInt16 && s <= math.MaxInt16, func(b []byte) []byte {
			return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(s))
		}},
		{(neg || v <= math.MaxInt32) && s >= math.MinInt32 && s <= math.MaxInt32, func(b []byte) []byte {
			return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(s))
		}},
		{neg || v <= math.MaxInt64, func(b []byte) []byte { return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(s)) }},
	}
	var fit []form
	for _, f := range forms {
		if f.fits {
			fit = append(fit, f)
		}
	}
	return fit[rapid.IntRange(0, len(fit)-1).Draw(t, "intForm")].put(b)
}

// The hand-written decoders refuse what the library would bend: an integer
// beyond its field's range (the library wraps or truncates it), a struct
// sent as an array (the library reads it by field position), and a field
// named twice (the library merges both values into one field). All are
// invalid arguments, never silently changed values.
func TestHandDecodersRefuseWhatTheLibraryBends(t *testing.T) {
	enc := func(v any) []byte { return libraryEncode(t, v) }
	cases := map[string]struct {
		body []byte
		into any
	}{
		"negative partition":      {enc(map[string]any{"partition": -1}), &ReplicaGetReq{}},
		"partition beyond 2^32":   {enc(map[string]any{"partition": uint64(1) << 32}), &ReplicaPutReq{}},
		"quorum beyond int32":     {enc(map[string]any{"opts": map[string]any{"r": int64(1) << 31}}), &GetReq{}},
		"negative ring version":   {enc(map[string]any{"ring_version": -5}), &PutResp{}},
		"written_at beyond int64": {enc(map[string]any{"siblings": []any{map[string]any{"written_at": uint64(math.MaxUint64)}}}), &GetResp{}},
		"negative dot counter": {enc(map[string]any{"object": map[string]any{"s": []any{map[string]any{"d": map[string]any{"c": -1}}}}}),
			&ReplicaGetResp{}},
		"struct as array":  {enc([]any{"b", []byte("k"), nil}), &GetReq{}},
		"options as array": {enc(map[string]any{"opts": []any{1, 1, 1, 1, 1, 1, false, false}}), &PutReq{}},
		"field twice":      {[]byte{0x82, 0xa3, 'k', 'e', 'y', 0xa1, 'a', 0xa3, 'k', 'e', 'y', 0xa1, 'b'}, &GetReq{}},
		"error code beyond a byte": {enc(map[string]any{"items": []any{map[string]any{"err": map[string]any{"code": 300}}}}),
			&ReplicaPutBatchResp{}},
	}
	for name, c := range cases {
		require.NoError(t, libraryDecode(c.body, newZero(c.into)), "%s: the library reads it", name)
		require.ErrorIs(t, Decode(c.body, c.into), cairn.ErrInvalidArgument, name)
	}
}

// TestDecodedBytesCannotOverwriteNeighbours: a decoded byte slice aliases
// the body, so an append to it must not write into the next field.
func TestDecodedBytesCannotOverwriteNeighbours(t *testing.T) {
	body := PutReq{Bucket: "b", Key: []byte("k"), Value: []byte("value"), Context: []byte{1, 2, 3}}.appendBody(nil)
	var req PutReq
	require.NoError(t, Decode(body, &req))
	require.Equal(t, len(req.Value), cap(req.Value))
	_ = append(req.Key, "XXXXXXXX"...)
	_ = append(req.Value, "XXXXXXXX"...)
	require.Equal(t, []byte("value"), req.Value)
	require.Equal(t, []byte{1, 2, 3}, req.Context)
}

// FuzzHandDecoders gives arbitrary bodies to the hand-written decoders.
// Whatever one accepts, the path it replaced accepts too (mpcheck with the
// frame's limits, then the library) and reads as the same message, which
// re-encodes to bytes that decode to it again. And no input of at most 64
// bytes allocates more than 1 MiB.
func FuzzHandDecoders(f *testing.F) {
	for _, msg := range messages() {
		if m, ok := msg.(bodyAppender); ok {
			f.Add(m.appendBody(nil))
		}
	}
	f.Add([]byte{0x81, 0xa8, 's', 'i', 'b', 'l', 'i', 'n', 'g', 's', 0xdd, 0x00, 0x00, 0xff, 0xff, 0xc0})
	f.Add([]byte{0x81, 0xa6, 'o', 'b', 'j', 'e', 'c', 't', 0x81, 0xa2, 'v', 'v', 0xdf, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa1, 'x', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01})
	zeros := messages()
	f.Fuzz(func(t *testing.T, body []byte) {
		for typ := range handCodedMessages {
			msg := zeros[typ]
			hand := newZero(msg)
			var err error
			boundAllocs(t, body, func() { err = Decode(body, hand) })
			if err != nil {
				continue
			}
			require.NoError(t, mpcheck.Check(body, bodyLimits), "%v accepted what mpcheck refuses", typ)
			lib := newZero(msg)
			require.NoError(t, libraryDecode(body, lib), "%v accepted what the library refuses", typ)
			require.Equal(t, lib, hand, typ.String())
			again := newZero(msg)
			require.NoError(t, Decode(hand.(bodyAppender).appendBody(nil), again))
			require.Equal(t, hand, again, typ.String())
		}
	})
}

// GetResp's size bounds its encoding and counts its elements exactly, so
// a node's decision to leave values out is never wrong the unsafe way.
func TestGetRespSizeBoundsItsEncoding(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		msg := handCodedMessages[TypeGetResp](rt).(*GetResp)
		body := msg.appendBody(nil)
		size, elements := msg.size()
		require.GreaterOrEqual(t, size, len(body))
		_, got, err := mpcheck.Measure(body, mpcheck.Limits{MaxDepth: 16, MaxElements: 1 << 20})
		require.NoError(t, err)
		require.LessOrEqual(t, got, elements)
	})
}

// ObjectItemSize and ObjectItemElements bound what an object adds to the
// messages that carry objects.
func TestObjectItemBoundsCoverTheMessages(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		msg := handCodedMessages[TypeReplicaPut](rt).(*ReplicaPutReq)
		body := msg.appendBody(nil)
		_, elements, err := mpcheck.Measure(body, mpcheck.Limits{MaxDepth: 16, MaxElements: 1 << 20})
		require.NoError(t, err)
		require.LessOrEqual(t, len(body), ObjectItemSize(msg.Object, msg.Bucket, msg.Key)+len(msg.For)+messageOverheadBytes)
		require.LessOrEqual(t, elements, ObjectItemElements(msg.Object)+messageOverheadElements)

		items := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) HandoffItem {
			return HandoffItem{Partition: rapid.Uint32().Draw(t, "p"), Bucket: genString("bucket").Draw(t, "bucket"),
				Key: genBytes("key").Draw(t, "key"), Object: genObject(t)}
		}), 0, 8).Draw(rt, "items")
		b := Batch{MaxFrame: 1 << 30}
		for _, it := range items {
			b.Add(it.Object, it.Bucket, it.Key)
		}
		frame, err := AppendFrame(nil, 1<<60, TypeHandoff, HandoffReq{Items: items}, 1<<30)
		require.NoError(t, err)
		require.LessOrEqual(t, len(frame), b.Bytes()+messageOverheadBytes)
		_, elements, err = mpcheck.Measure(frame[4:], mpcheck.Limits{MaxDepth: 16, MaxElements: 1 << 20})
		require.NoError(t, err)
		require.LessOrEqual(t, elements, b.elements+messageOverheadElements)
	})
}

// TestReplicaBatchBounded: a batch may hold MaxReplicaBatch items; a
// header claiming more is refused before anything is allocated for them,
// whatever bytes follow.
func TestReplicaBatchBounded(t *testing.T) {
	item := ReplicaPutReq{Partition: 1, Bucket: "b", Key: []byte("k")}
	full := ReplicaPutBatchReq{Items: make([]ReplicaPutReq, MaxReplicaBatch)}
	for i := range full.Items {
		full.Items[i] = item
	}
	var got ReplicaPutBatchReq
	require.NoError(t, Decode(full.appendBody(nil), &got))
	require.Len(t, got.Items, MaxReplicaBatch)

	over := ReplicaPutBatchReq{Items: append(full.Items, item)}
	require.ErrorIs(t, Decode(over.appendBody(nil), &got), cairn.ErrInvalidArgument)

	// A 32-bit array header naming 2^32-1 items, then nothing.
	huge := append(appendKey([]byte{0x81}, "items"), 0xdd, 0xff, 0xff, 0xff, 0xff)
	allocs := testing.AllocsPerRun(10, func() {
		var m ReplicaPutBatchReq
		require.Error(t, Decode(huge, &m))
	})
	require.Less(t, allocs, 20.0)

	// The answer holds as many items as a batch, and no more.
	answer := ReplicaPutBatchResp{Items: make([]ReplicaPutResult, MaxReplicaBatch)}
	var gotAnswer ReplicaPutBatchResp
	require.NoError(t, Decode(answer.appendBody(nil), &gotAnswer))
	require.Len(t, gotAnswer.Items, MaxReplicaBatch)
	answer.Items = append(answer.Items, ReplicaPutResult{Durable: true})
	require.ErrorIs(t, Decode(answer.appendBody(nil), &gotAnswer), cairn.ErrInvalidArgument)
}
