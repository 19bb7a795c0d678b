package wire

import (
	"math"

	"github.com/cairnkv/cairn/internal/mpcodec"
)

// The request path's messages have hand-written codecs: reflection and the
// mpcheck pre-pass cost more than the rest of decoding them. Each encoder
// writes exactly the bytes the library writes for the struct tags (with
// compact integers); each decoder reads anything the library reads, except
// an integer beyond its field's range, a struct sent as an array and a
// field named twice, and checks every length as it reads (internal/mpcodec).
// codec_test.go holds the two codecs to that.
//
// Decoded byte slices alias the body they were read from (capacity cut to
// length). A body is the frame payload ReadFrame allocated for it alone, so
// a message may keep its slices for as long as it likes; whoever recycles
// payloads must first copy what outlives them.

// bodyAppender is a message with a hand-written encoder.
type bodyAppender interface {
	appendBody(b []byte) []byte
}

// handCoded reports whether messages of type t have hand-written codecs:
// ParseFrame leaves their bodies to the decoder's own checks.
func handCoded(t Type) bool {
	switch t {
	case TypeGet, TypeGetResp, TypePut, TypePutResp, TypeDelete, TypeDeleteResp,
		TypeReplicaGet, TypeReplicaGetResp, TypeReplicaPut, TypeReplicaPutResp, TypeReplicaPutBatch,
		TypeReplicaPutBatchResp:
		return true
	}
	return false
}

var optionsFields = []string{"r", "w", "pr", "pw", "dw", "timeout_ms", "no_sloppy", "notfound_strict"}

func (o *Options) appendMsgpack(b []byte) []byte {
	b = append(b, 0x88, 0xa1, 'r')
	b = mpcodec.AppendInt(b, int64(o.R))
	b = append(b, 0xa1, 'w')
	b = mpcodec.AppendInt(b, int64(o.W))
	b = append(b, 0xa2, 'p', 'r')
	b = mpcodec.AppendInt(b, int64(o.PR))
	b = append(b, 0xa2, 'p', 'w')
	b = mpcodec.AppendInt(b, int64(o.PW))
	b = append(b, 0xa2, 'd', 'w')
	b = mpcodec.AppendInt(b, int64(o.DW))
	b = mpcodec.AppendString(b, "timeout_ms")
	b = mpcodec.AppendUint(b, uint64(o.TimeoutMs))
	b = mpcodec.AppendString(b, "no_sloppy")
	b = mpcodec.AppendBool(b, o.NoSloppy)
	b = mpcodec.AppendString(b, "notfound_strict")
	return mpcodec.AppendBool(b, o.NotFoundStrict)
}

// readMsgpack reads options into o: fields the map leaves out keep o's
// values (the caller's defaults), and nil is the zero Options, as with the
// library.
func (o *Options) readMsgpack(r *mpcodec.Reader, level int) error {
	isNil, err := r.Fields(level, optionsFields, func(i int) error {
		var err error
		switch i {
		case 0:
			err = readQuorum(r, &o.R)
		case 1:
			err = readQuorum(r, &o.W)
		case 2:
			err = readQuorum(r, &o.PR)
		case 3:
			err = readQuorum(r, &o.PW)
		case 4:
			err = readQuorum(r, &o.DW)
		case 5:
			o.TimeoutMs, err = readUint32(r)
		case 6:
			o.NoSloppy, err = r.Bool()
		default:
			o.NotFoundStrict, err = r.Bool()
		}
		return err
	})
	if isNil {
		*o = Options{}
	}
	return err
}

func readQuorum(r *mpcodec.Reader, q *Quorum) error {
	v, err := r.Int(math.MinInt32, math.MaxInt32)
	*q = Quorum(v)
	return err
}

func readUint32(r *mpcodec.Reader) (uint32, error) {
	v, err := r.Uint(math.MaxUint32)
	return uint32(v), err
}

func readUint64(r *mpcodec.Reader) (uint64, error) { return r.Uint(math.MaxUint64) }

func readInt(r *mpcodec.Reader) (int, error) {
	v, err := r.Int(math.MinInt, math.MaxInt)
	return int(v), err
}

// readStrings reads a []string field; nil leaves dst as it is, as the
// library does.
func readStrings(r *mpcodec.Reader, level int, dst *[]string) error {
	n, err := r.ArrayLen(level)
	if err != nil || n < 0 {
		return err
	}
	// ArrayLen has checked that n items fit in the bytes left.
	s := make([]string, n)
	for i := range s {
		if s[i], err = r.String(); err != nil {
			return err
		}
	}
	*dst = s
	return nil
}

func appendStrings(b []byte, s []string) []byte {
	if s == nil {
		return mpcodec.AppendNil(b)
	}
	b = mpcodec.AppendArrayLen(b, len(s))
	for _, v := range s {
		b = mpcodec.AppendString(b, v)
	}
	return b
}

// appendKey appends a field's key.
func appendKey(b []byte, key string) []byte { return mpcodec.AppendString(b, key) }
