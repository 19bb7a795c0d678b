package wire

import (
	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/internal/mpcodec"
)

// A causal context is opaque to clients: they get it from a read and hand it
// back with a write. It is a version byte, then the version vector as a
// msgpack map of actor to counter (actors sorted).
const contextVersion = 1

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
func EncodeContext(vv dvv.VV) []byte {
	if len(vv) == 0 {
		return nil
	}
	size := 3
	for a := range vv {
		size += len(a) + 11
	}
	return vv.AppendMsgpack(append(make([]byte, 0, size), contextVersion))
}

// DecodeContext reads a context a client sent back. An empty context is the
// empty vector (a write that replaces nothing). Anything malformed is an
// invalid argument: a forged or truncated context must never replace
// siblings it did not see, so it is refused rather than repaired. So is a
// counter above dvv.MaxCounter, which no history can have minted (and
// 2^64-1 would make the next dot wrap to 0). An entry of counter 0 says
// nothing (every vector covers it) and is dropped.
//
// A well-formed context may still name writes no replica has seen; only
// the coordinator, which holds the key's copy, can tell, and refuses it
// there (node/coord).
func DecodeContext(b []byte) (dvv.VV, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > maxContextBytes {
		return nil, cairn.InvalidArgument("context is %d bytes, more than %d", len(b), maxContextBytes)
	}
	if b[0] != contextVersion {
		return nil, cairn.InvalidArgument("context has unknown version %d", b[0])
	}
	var vv dvv.VV
	r := mpcodec.NewReader(b[1:], mpcheck.Limits{MaxDepth: 1, MaxElements: 2 * maxContextActors})
	err := vv.ReadMsgpack(&r, 1)
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return nil, cairn.InvalidArgument("context is malformed: %v", err)
	}
	for actor, c := range vv {
		if actor == "" || len(actor) > maxActorLen {
			return nil, cairn.InvalidArgument("context names an actor of %d bytes", len(actor))
		}
		if c > dvv.MaxCounter {
			return nil, cairn.InvalidArgument("context names counter %d for actor %q, more than any node can have minted (at most %d)", c, actor, uint64(dvv.MaxCounter))
		}
	}
	return vv, nil
}
