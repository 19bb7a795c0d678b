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
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
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
// decoded with Decode into the struct its Type names.
type Frame struct {
	ID   uint64
	Type Type
	Body []byte
}

// ParseFrame checks a payload with mpcheck and splits it into id, type and
// body. Any failure is a protocol error: the connection it came from is
// closed.
func ParseFrame(payload []byte) (Frame, error) {
	if err := mpcheck.Check(payload, mpcheck.DefaultLimits()); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", cairn.ErrProtocol, err)
	}
	r := bytes.NewReader(payload)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r)
	n, err := dec.DecodeArrayLen()
	if err != nil || n != 3 {
		return Frame{}, protocolError("a frame is an array of id, type and body")
	}
	id, err := decodeUnsigned(dec, math.MaxUint64)
	if err != nil {
		return Frame{}, protocolError("frame id: %v", err)
	}
	t, err := decodeUnsigned(dec, math.MaxUint16)
	if err != nil {
		return Frame{}, protocolError("frame type: %v", err)
	}
	// mpcheck guaranteed exactly one value with no trailing bytes, so what
	// is left is exactly the body.
	return Frame{ID: id, Type: Type(t), Body: payload[len(payload)-r.Len():]}, nil
}

// decodeUnsigned reads an integer that must be in [0, limit]. The library
// would silently turn -1 into 2^64-1.
func decodeUnsigned(dec *msgpack.Decoder, limit uint64) (uint64, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, err
	}
	var v uint64
	switch {
	case msgpcode.IsFixedNum(c) && int8(c) >= 0, c >= msgpcode.Uint8 && c <= msgpcode.Uint64:
		v, err = dec.DecodeUint64()
	case c >= msgpcode.Int8 && c <= msgpcode.Int64:
		var i int64
		i, err = dec.DecodeInt64()
		if err == nil && i < 0 {
			err = fmt.Errorf("%d is negative", i)
		}
		v = uint64(i)
	default:
		err = fmt.Errorf("code 0x%02x is not an integer", c)
	}
	if err == nil && v > limit {
		err = fmt.Errorf("%d is more than %d", v, limit)
	}
	return v, err
}

// AppendFrame encodes a frame (length prefix included) onto dst. A body
// that makes the frame longer than limit is an error and dst is returned
// unchanged.
func AppendFrame(dst []byte, id uint64, t Type, body any, limit int) ([]byte, error) {
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
	out := buf.Bytes()
	if err != nil {
		return dst[:start], fmt.Errorf("encode %v: %w", t, err)
	}
	n := len(out) - start - 4
	if n > limit {
		return dst[:start], fmt.Errorf("%w: %v message of %d bytes exceeds the frame limit of %d", cairn.ErrInvalidArgument, t, n, limit)
	}
	binary.BigEndian.PutUint32(out[start:], uint32(n))
	return out, nil
}

// Decode decodes a message body into v. The body is checked with mpcheck
// first even though ParseFrame already checked the whole frame: Decode is
// the one entry point for untrusted message bytes. A body of the wrong
// shape is the sender's invalid argument.
func Decode(body []byte, v any) error {
	if err := mpcheck.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: malformed message: %v", cairn.ErrInvalidArgument, err)
	}
	return nil
}
