package dvv

import (
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

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
