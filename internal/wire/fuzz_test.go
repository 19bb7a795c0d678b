package wire

import (
	"bytes"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
)

// boundAllocs holds a fuzz input to the package's promise: no input of at
// most 64 bytes may make decoding allocate more than 1 MiB.
func boundAllocs(t *testing.T, in []byte, fn func()) {
	t.Helper()
	n := allocated(fn)
	if len(in) <= 64 && n > 1<<20 {
		t.Fatalf("%d-byte input allocated %d bytes", len(in), n)
	}
}

func seedFrames(f *testing.F) {
	for typ, msg := range messages() {
		raw, err := AppendFrame(nil, 1, typ, msg, DefaultMaxFrame)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add(append(header(2<<30), 1, 2, 3))
	f.Add(append(header(8), 0x93, 0x01, 0x0b, 0xc6, 0xff, 0xff, 0xff, 0xff))
	f.Add(append(header(8), 0x93, 0x01, 0x0b, 0xdd, 0xff, 0xff, 0xff, 0xff))
}

// FuzzReadFrame feeds a byte stream through everything a connection does
// with it: frames, envelopes, and the body decoder of the type each names.
func FuzzReadFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		boundAllocs(t, in, func() {
			r := bytes.NewReader(in)
			for {
				payload, err := ReadFrame(r, 1<<20)
				if err != nil {
					return
				}
				fr, err := ParseFrame(payload)
				if err != nil {
					return
				}
				if msg, ok := messages()[fr.Type]; ok {
					_ = Decode(fr.Body, newOf(msg))
				}
			}
		})
	})
}

// FuzzDecode gives arbitrary bodies to every message decoder.
func FuzzDecode(f *testing.F) {
	for _, msg := range messages() {
		raw, err := AppendFrame(nil, 1, TypePing, msg, DefaultMaxFrame)
		if err != nil {
			f.Fatal(err)
		}
		fr, err := ParseFrame(raw[4:])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fr.Body)
	}
	f.Add([]byte{0xc6, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa3, 'k', 'e', 'y', 0xdd, 0x7f, 0xff, 0xff, 0xff})
	all := messages()
	f.Fuzz(func(t *testing.T, body []byte) {
		boundAllocs(t, body, func() {
			for _, msg := range all {
				_ = Decode(body, newOf(msg))
			}
		})
	})
}

// FuzzDecodeContext gives arbitrary contexts to the context decoder.
func FuzzDecodeContext(f *testing.F) {
	f.Add(EncodeContext(sampleObject().VV))
	f.Add([]byte{1, 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Add(EncodeContext(dvv.VV{"n1.a": 1<<64 - 1}))
	f.Add(EncodeContextStamp(sampleObject().VV, 1_700_000_000_000_000_000))
	f.Add([]byte{2, 0x81, 0xa1, 'a', 0x01, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		boundAllocs(t, in, func() {
			vv, stamp, err := DecodeContextStamp(in)
			if err != nil {
				return
			}
			back, backStamp, err := DecodeContextStamp(EncodeContextStamp(vv, stamp))
			if err != nil || !back.Equal(vv) || (len(vv) > 0 && backStamp != stamp) || stamp < 0 {
				t.Fatalf("a decoded context does not round-trip: %v %d %v", vv, stamp, err)
			}
			for a, c := range vv {
				if c == 0 || c > dvv.MaxCounter {
					t.Fatalf("a decoded context holds counter %d for %q", c, a)
				}
			}
		})
	})
}
