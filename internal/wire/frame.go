package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/internal/mpcodec"
	"github.com/vmihailenco/msgpack/v5"
)

// Version is the protocol version this package speaks.
const Version = 1

// Preamble opens a connection in both directions: the magic "CAIR" and the
// protocol version. Anything else (an HTTP request, a port scanner) is
// refused before a frame is parsed.
var Preamble = [5]byte{'C', 'A', 'I', 'R', Version}

// DefaultMaxFrame bounds a frame's length (DESIGN section 9).
const DefaultMaxFrame = 16 << 20

// readChunk is how much of a frame body is allocated ahead of the bytes that
// actually arrived: a peer announcing 16 MiB and sending 10 bytes costs 64
// KiB, not 16 MiB.
const readChunk = 64 << 10

// ErrFrameTooLarge is wrapped by ReadFrame when a length exceeds the limit.
var ErrFrameTooLarge = errors.New("frame too large")

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", cairn.ErrProtocol, fmt.Sprintf(format, args...))
}

// ReadPreamble reads and checks the far side's preamble.
func ReadPreamble(r io.Reader) error {
	var got [5]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return err
	}
	if !bytes.Equal(got[:4], Preamble[:4]) {
		return protocolError("not a cairn connection (preamble % x)", got[:4])
	}
	if got[4] != Version {
		return protocolError("protocol version %d, this node speaks %d", got[4], Version)
	}
	return nil
}

// ReadFrame reads one frame and returns its payload. The length is checked
// against limit before anything is read, and the payload buffer grows (by
// doubling) with the bytes that arrive, never ahead of them by more than it
// already holds.
func ReadFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	announced := binary.BigEndian.Uint32(hdr[:])
	if announced == 0 {
		return nil, protocolError("empty frame")
	}
	if uint64(announced) > uint64(limit) {
		return nil, fmt.Errorf("%w: %w: %d bytes announced, limit %d", cairn.ErrProtocol, ErrFrameTooLarge, announced, limit)
	}
	n := int(announced)
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), cap(buf)))
		}
		m, err := io.ReadFull(r, buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// Frame is one decoded frame. Body is the raw msgpack of the message, to be
// decoded with Decode into the struct its Type names. Body aliases the
// payload given to ParseFrame.
type Frame struct {
	ID   uint64
	Type Type
	Body []byte
}

// bodyLimits are mpcheck's limits on a frame as they apply to its body: the
// envelope array takes one level and three elements of them.
var bodyLimits = func() mpcheck.Limits {
	lim := mpcheck.DefaultLimits()
	return mpcheck.Limits{MaxDepth: lim.MaxDepth - 1, MaxElements: lim.MaxElements - 3}
}()

// ParseFrame splits a payload into id, type and body. Any failure is a
// protocol error: the connection it came from is closed.
//
// The body is checked with mpcheck, except for the types with hand-written
// codecs (handCoded): their decoders check as they read, which spares the
// request path a second pass over every message. When decoding such a body
// fails, CheckBody tells a broken frame from a message of the wrong shape.
func ParseFrame(payload []byte) (Frame, error) {
	r := mpcodec.NewReader(payload, mpcheck.DefaultLimits())
	if n, err := r.ArrayLen(1); err != nil || n != 3 {
		return Frame{}, protocolError("a frame is an array of id, type and body")
	}
	id, err := readEnvelopeUint(&r, math.MaxUint64)
	if err != nil {
		return Frame{}, protocolError("frame id: %v", err)
	}
	t, err := readEnvelopeUint(&r, math.MaxUint16)
	if err != nil {
		return Frame{}, protocolError("frame type: %v", err)
	}
	f := Frame{ID: id, Type: Type(t), Body: payload[len(payload)-r.Len():]}
	if !handCoded(f.Type) {
		if err := mpcheck.Check(f.Body, bodyLimits); err != nil {
			return Frame{}, fmt.Errorf("%w: %v", cairn.ErrProtocol, err)
		}
	}
	return f, nil
}

// readEnvelopeUint reads an integer that must be in [0, limit]; unlike a
// field, it may not be nil.
func readEnvelopeUint(r *mpcodec.Reader, limit uint64) (uint64, error) {
	if r.NextIsNil() {
		return 0, errors.New("nil is not an integer")
	}
	return r.Uint(limit)
}

// CheckBody reports, as a protocol error, a body that breaks the rules
// every payload must keep (well-formed msgpack, one value, within mpcheck's
// limits). It has something to say only about the types ParseFrame leaves
// to their decoders: a caller whose Decode of such a body failed asks it
// whether the peer broke the protocol (close the connection, as ParseFrame
// would have) or sent a well-formed message of the wrong shape.
func (f Frame) CheckBody() error {
	if !handCoded(f.Type) {
		return nil
	}
	if err := mpcheck.Check(f.Body, bodyLimits); err != nil {
		return fmt.Errorf("%w: %v", cairn.ErrProtocol, err)
	}
	return nil
}

// AppendFrame encodes a frame (length prefix included) onto dst. A body
// that makes the frame longer than limit is an error and dst is returned
// unchanged.
func AppendFrame(dst []byte, id uint64, t Type, body any, limit int) ([]byte, error) {
	if m, ok := body.(bodyAppender); ok {
		out := append(dst, 0, 0, 0, 0, 0x93)
		out = mpcodec.AppendUint(out, id)
		out = mpcodec.AppendUint(out, uint64(t))
		return finishFrame(m.appendBody(out), len(dst), t, limit)
	}
	start := len(dst)
	buf := bytes.NewBuffer(append(dst, 0, 0, 0, 0))
	enc := msgpack.GetEncoder()
	enc.Reset(buf)
	enc.UseCompactInts(true)
	err := enc.EncodeArrayLen(3)
	if err == nil {
		err = enc.EncodeUint(id)
	}
	if err == nil {
		err = enc.EncodeUint(uint64(t))
	}
	if err == nil {
		err = enc.Encode(body)
	}
	msgpack.PutEncoder(enc)
	if err != nil {
		return dst[:start], fmt.Errorf("encode %v: %w", t, err)
	}
	return finishFrame(buf.Bytes(), start, t, limit)
}

// finishFrame writes the length prefix of the frame that starts at
// out[start:], or refuses a frame over the limit.
func finishFrame(out []byte, start int, t Type, limit int) ([]byte, error) {
	n := len(out) - start - 4
	if n > limit {
		return out[:start], fmt.Errorf("%w: %v message of %d bytes exceeds the frame limit of %d", cairn.ErrInvalidArgument, t, n, limit)
	}
	binary.BigEndian.PutUint32(out[start:], uint32(n))
	return out, nil
}

// Decode decodes a message body into v. Fields the body leaves out keep
// v's values. It is the one entry point for untrusted message bytes: the
// request path's messages are read by their hand-written decoders, which
// check as they read (codec.go); any other body is checked with mpcheck
// before the msgpack library sees it, even though ParseFrame checked it
// already. A body of the wrong shape is the sender's invalid argument.
//
// The byte slices of a hand-decoded message alias body.
func Decode(body []byte, v any) error {
	if ok, err := decodeHandCoded(body, v); ok {
		if err != nil {
			return fmt.Errorf("%w: malformed message: %v", cairn.ErrInvalidArgument, err)
		}
		return nil
	}
	if err := mpcheck.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: malformed message: %v", cairn.ErrInvalidArgument, err)
	}
	return nil
}

// decodeHandCoded decodes body into v if v has a hand-written decoder. The
// switch on concrete types (rather than an interface) keeps the reader off
// the heap.
func decodeHandCoded(body []byte, v any) (ok bool, err error) {
	r := mpcodec.NewReader(body, bodyLimits)
	switch m := v.(type) {
	case *GetReq:
		err = m.readBody(&r)
	case *GetResp:
		err = m.readBody(&r)
	case *PutReq:
		err = m.readBody(&r)
	case *PutResp:
		err = m.readBody(&r)
	case *DeleteReq:
		err = m.readBody(&r)
	case *DeleteResp:
		err = m.readBody(&r)
	case *ReplicaGetReq:
		err = m.readBody(&r)
	case *ReplicaGetResp:
		err = m.readBody(&r)
	case *ReplicaPutReq:
		err = m.readBody(&r)
	case *ReplicaPutResp:
		err = m.readBody(&r)
	case *ReplicaPutBatchReq:
		err = m.readBody(&r)
	case *ReplicaPutBatchResp:
		err = m.readBody(&r)
	default:
		return false, nil
	}
	if err == nil {
		err = r.End()
	}
	return true, err
}
