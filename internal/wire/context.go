package wire

import (
	"math"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/internal/mpcodec"
)

// A causal context is opaque to clients: they get it from a read and hand it
// back with a write. It is a version byte, then the version vector as a
// msgpack map of actor to counter (actors sorted); from version 2, then the
// stamp as a msgpack integer: the highest written_at of what the read saw,
// which a last-write-wins coordinator's next write must pass (dvv.LWW). A
// context without a stamp encodes as version 1, as it always did, and
// version 1 stays readable (stamp 0).
const (
	contextVersion        = 1
	contextVersionStamped = 2
)

// Limits of a context a client sends back. A vector holds one entry per
// actor that ever coordinated a write to the key: a few per replica
// incarnation, far below these bounds.
const (
	maxContextBytes  = 64 << 10
	maxContextActors = 1024
	maxActorLen      = 255
)

// EncodeContext makes the opaque context of a vector; an empty vector has an
// empty context.
func EncodeContext(vv dvv.VV) []byte { return EncodeContextStamp(vv, 0) }

// EncodeSetContext is EncodeContext for a set's clock, except that an
// empty clock is not empty bytes but an encoded empty vector: a set
// remove without a context removes what the coordinator holds, and one
// with the context of a read that saw nothing must remove nothing.
func EncodeSetContext(vv dvv.VV) []byte {
	if len(vv) == 0 {
		return []byte{contextVersion, 0x80}
	}
	return EncodeContext(vv)
}

// EncodeContextStamp makes the opaque context of a vector and the stamp of
// the read (dvv.Object.Stamp); a stamp of 0 or less is left out. An empty
// vector has an empty context: a read that found nothing saw no write.
func EncodeContextStamp(vv dvv.VV, stamp int64) []byte {
	if len(vv) == 0 {
		return nil
	}
	size := 3 + 9
	for a := range vv {
		size += len(a) + 11
	}
	if stamp <= 0 {
		return vv.AppendMsgpack(append(make([]byte, 0, size), contextVersion))
	}
	b := vv.AppendMsgpack(append(make([]byte, 0, size), contextVersionStamped))
	return mpcodec.AppendInt(b, stamp)
}

// DecodeContext reads a context a client sent back, without its stamp
// (DecodeContextStamp).
func DecodeContext(b []byte) (dvv.VV, error) {
	vv, _, err := DecodeContextStamp(b)
	return vv, err
}

// DecodeContextStamp reads a context a client sent back: its vector and
// its stamp (0 when it has none). An empty context is the empty vector (a
// write that replaces nothing). Anything malformed is an invalid argument:
// a forged or truncated context must never replace siblings it did not
// see, so it is refused rather than repaired. So is a counter above
// dvv.MaxCounter, which no history can have minted (and 2^64-1 would make
// the next dot wrap to 0), and a stamp that is not positive. An entry of
// counter 0 says nothing (every vector covers it) and is dropped.
//
// A well-formed context may still name writes no replica has seen, or a
// stamp later than any write; only the coordinator, which holds the key's
// copy, can tell, and refuses it there (node/coord, node's replicaSet).
func DecodeContextStamp(b []byte) (dvv.VV, int64, error) {
	if len(b) == 0 {
		return nil, 0, nil
	}
	if len(b) > maxContextBytes {
		return nil, 0, cairn.InvalidArgument("context is %d bytes, more than %d", len(b), maxContextBytes)
	}
	if b[0] != contextVersion && b[0] != contextVersionStamped {
		return nil, 0, cairn.InvalidArgument("context has unknown version %d", b[0])
	}
	var vv dvv.VV
	var stamp int64
	r := mpcodec.NewReader(b[1:], mpcheck.Limits{MaxDepth: 1, MaxElements: 2 * maxContextActors})
	err := vv.ReadMsgpack(&r, 1)
	if err == nil && b[0] == contextVersionStamped {
		stamp, err = r.Int(1, math.MaxInt64)
	}
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return nil, 0, cairn.InvalidArgument("context is malformed: %v", err)
	}
	for actor, c := range vv {
		if actor == "" || len(actor) > maxActorLen {
			return nil, 0, cairn.InvalidArgument("context names an actor of %d bytes", len(actor))
		}
		if c > dvv.MaxCounter {
			return nil, 0, cairn.InvalidArgument("context names counter %d for actor %q, more than any node can have minted (at most %d)", c, actor, uint64(dvv.MaxCounter))
		}
	}
	return vv, stamp, nil
}
