package dvv

import (
	"fmt"
	"math"
	"slices"

	"github.com/cairnkv/cairn/internal/mpcodec"
	"github.com/vmihailenco/msgpack/v5"
)

// Two codecs write the same bytes. The msgpack library's, through the
// struct tags and the two methods of VV below, serves the messages that
// are not on the request path. The hand-written one (AppendMsgpack and
// ReadMsgpack) serves the object in the replica messages and on disk,
// where reflection cost too much; codec_test.go holds the two to the same
// bytes and the same values.

// EncodeMsgpack writes the vector with its actors in ascending order, so
// equal vectors always encode to equal bytes (the library iterates Go maps
// in random order). Stored objects and anything hashed rely on it.
func (v VV) EncodeMsgpack(enc *msgpack.Encoder) error {
	if v == nil {
		return enc.EncodeNil()
	}
	actors := make([]string, 0, len(v))
	for a := range v {
		actors = append(actors, a)
	}
	slices.Sort(actors)
	if err := enc.EncodeMapLen(len(actors)); err != nil {
		return err
	}
	for _, a := range actors {
		if err := enc.EncodeString(a); err != nil {
			return err
		}
		if err := enc.EncodeUint(v[a]); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads a vector written by EncodeMsgpack (or any msgpack map
// of string to unsigned integer). Callers hand it only input that
// internal/mpcheck has bounded, so the declared length is trustworthy.
func (v *VV) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 {
		*v = nil
		return nil
	}
	out := make(VV, n)
	for range n {
		a, err := dec.DecodeString()
		if err != nil {
			return err
		}
		c, err := dec.DecodeUint64()
		if err != nil {
			return err
		}
		if _, dup := out[a]; dup {
			return fmt.Errorf("version vector names actor %q twice", a)
		}
		if c == 0 {
			// A zero entry says nothing; keeping it would make equal
			// vectors encode differently.
			continue
		}
		out[a] = c
	}
	*v = out
	return nil
}

// The keys of the struct tags, in field order.
var (
	objectFields  = []string{"s", "vv"}
	siblingFields = []string{"d", "v", "t", "w"}
	dotFields     = []string{"a", "c"}
)

// AppendMsgpack appends o as the library writes it with compact integers:
// {s: [siblings in slice order], vv: vector in actor order}.
func (o Object) AppendMsgpack(b []byte) []byte {
	b = append(b, 0x82, 0xa1, 's')
	if o.Siblings == nil {
		b = mpcodec.AppendNil(b)
	} else {
		b = mpcodec.AppendArrayLen(b, len(o.Siblings))
		for i := range o.Siblings {
			b = o.Siblings[i].appendMsgpack(b)
		}
	}
	b = append(b, 0xa2, 'v', 'v')
	return o.VV.AppendMsgpack(b)
}

func (s *Sibling) appendMsgpack(b []byte) []byte {
	b = append(b, 0x84, 0xa1, 'd', 0x82, 0xa1, 'a')
	b = mpcodec.AppendString(b, s.Dot.Actor)
	b = append(b, 0xa1, 'c')
	b = mpcodec.AppendUint(b, s.Dot.Counter)
	b = append(b, 0xa1, 'v')
	b = mpcodec.AppendBytes(b, s.Value)
	b = append(b, 0xa1, 't')
	b = mpcodec.AppendBool(b, s.Tombstone)
	b = append(b, 0xa1, 'w')
	return mpcodec.AppendInt(b, s.WrittenAt)
}

// AppendMsgpack appends the vector as EncodeMsgpack writes it: actors in
// ascending order, zero entries included, nil as nil.
func (v VV) AppendMsgpack(b []byte) []byte {
	if v == nil {
		return mpcodec.AppendNil(b)
	}
	var onStack [8]string
	actors := onStack[:0]
	for a := range v {
		actors = append(actors, a)
	}
	slices.Sort(actors)
	b = mpcodec.AppendMapLen(b, len(actors))
	for _, a := range actors {
		b = mpcodec.AppendString(b, a)
		b = mpcodec.AppendUint(b, v[a])
	}
	return b
}

// ReadMsgpack reads an object at level (1 when it is the whole input) as
// the library would decode it, with two refusals the library does not
// make: an integer out of its field's range, and a field named twice.
// Values alias r's input.
func (o *Object) ReadMsgpack(r *mpcodec.Reader, level int) error {
	isNil, err := r.Fields(level, objectFields, func(i int) error {
		if i == 0 {
			return readSiblings(r, level+1, &o.Siblings)
		}
		return o.VV.readMsgpack(r, level+1, o.Siblings)
	})
	if isNil {
		*o = Object{}
	}
	return err
}

func readSiblings(r *mpcodec.Reader, level int, dst *[]Sibling) error {
	n, err := r.ArrayLen(level)
	if err != nil || n < 0 {
		*dst = nil
		return err
	}
	// ArrayLen has checked that n items fit in the bytes left.
	s := make([]Sibling, n)
	for i := range s {
		if err := s[i].readMsgpack(r, level+1); err != nil {
			return fmt.Errorf("sibling %d: %w", i, err)
		}
	}
	*dst = s
	return nil
}

func (s *Sibling) readMsgpack(r *mpcodec.Reader, level int) error {
	isNil, err := r.Fields(level, siblingFields, func(i int) error {
		var err error
		switch i {
		case 0:
			err = s.Dot.readMsgpack(r, level+1)
		case 1:
			s.Value, err = r.Bytes()
		case 2:
			s.Tombstone, err = r.Bool()
		default:
			s.WrittenAt, err = r.Int(math.MinInt64, math.MaxInt64)
		}
		return err
	})
	if isNil {
		*s = Sibling{}
	}
	return err
}

func (d *Dot) readMsgpack(r *mpcodec.Reader, level int) error {
	isNil, err := r.Fields(level, dotFields, func(i int) error {
		var err error
		if i == 0 {
			d.Actor, err = r.String()
		} else {
			d.Counter, err = r.Uint(math.MaxUint64)
		}
		return err
	})
	if isNil {
		*d = Dot{}
	}
	return err
}

// ReadMsgpack reads a vector at level as DecodeMsgpack does, refusing a
// negative counter.
func (v *VV) ReadMsgpack(r *mpcodec.Reader, level int) error {
	return v.readMsgpack(r, level, nil)
}

// readMsgpack reads a vector, taking each actor's string from the
// siblings when one names it: an object's actors mostly appear in both.
func (v *VV) readMsgpack(r *mpcodec.Reader, level int, siblings []Sibling) error {
	n, err := r.MapLen(level)
	if err != nil || n < 0 {
		*v = nil
		return err
	}
	// MapLen has checked that n entries fit in the bytes left.
	out := make(VV, n)
	for range n {
		key, err := r.Key()
		if err != nil {
			return err
		}
		c, err := r.Uint(math.MaxUint64)
		if err != nil {
			return fmt.Errorf("counter of actor %q: %w", key, err)
		}
		if _, dup := out[string(key)]; dup {
			return fmt.Errorf("%w: version vector names actor %q twice", mpcodec.ErrInvalid, key)
		}
		if c == 0 {
			continue // as in DecodeMsgpack
		}
		out[internActor(key, siblings)] = c
	}
	*v = out
	return nil
}

func internActor(key []byte, siblings []Sibling) string {
	for i := range siblings {
		if siblings[i].Dot.Actor == string(key) {
			return siblings[i].Dot.Actor
		}
	}
	return string(key)
}

// MsgpackSize is how many bytes AppendMsgpack writes for o, computed
// without encoding: a coordinator checks the object a client write would
// leave against the node's object size limit, and senders check that an
// object fits a frame before they build one.
func (o Object) MsgpackSize() int {
	n := 3 + 3 // the map header and "s"; "vv"
	if o.Siblings == nil {
		n++
	} else {
		n += mpcodec.LenSize(len(o.Siblings))
		for i := range o.Siblings {
			s := &o.Siblings[i]
			// {d: {a, c}, v, t, w}: two map headers, six one-letter
			// keys and the boolean.
			n += 15 + mpcodec.StringSize(len(s.Dot.Actor)) + mpcodec.UintSize(s.Dot.Counter) +
				mpcodec.BytesSize(s.Value) + mpcodec.IntSize(s.WrittenAt)
		}
	}
	return n + o.VV.msgpackSize()
}

func (v VV) msgpackSize() int {
	if v == nil {
		return 1
	}
	n := mpcodec.LenSize(len(v))
	for a, c := range v {
		n += mpcodec.StringSize(len(a)) + mpcodec.UintSize(c)
	}
	return n
}

// MsgpackElements is how many msgpack elements (array items, and map keys
// and values, as internal/mpcheck counts them) AppendMsgpack writes for o.
// A receiver refuses a message holding more than its limit, so a sender
// counts before it batches objects into one.
func (o Object) MsgpackElements() int {
	// The object map's two entries; per sibling its array item, its map's
	// four entries and its dot's two; per actor of the vector one entry.
	return 4 + 13*len(o.Siblings) + 2*len(o.VV)
}
