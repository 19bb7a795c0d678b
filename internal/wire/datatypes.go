package wire

import "github.com/cairnkv/cairn/internal/mpcodec"

// CounterIncrReq adds Delta (negative to decrement) to the counter under
// Bucket/Key, in a bucket whose datatype is counter. Like a put, it is
// coordinated by a node holding a copy of the key (Forwarded as in
// PutReq); W, PW and DW apply.
type CounterIncrReq struct {
	Bucket    string  `msgpack:"bucket"`
	Key       []byte  `msgpack:"key"`
	Delta     int64   `msgpack:"delta"`
	Opts      Options `msgpack:"opts"`
	Forwarded bool    `msgpack:"forwarded,omitempty"`
}

// CounterIncrResp answers an increment with the counter's value in the
// coordinator's copy after it: every increment that copy has seen, not a
// read at R.
type CounterIncrResp struct {
	Value int64 `msgpack:"value"`
}

// CounterGetReq reads a counter: R, PR and notfound_ok apply as to a get.
type CounterGetReq struct {
	Bucket string  `msgpack:"bucket"`
	Key    []byte  `msgpack:"key"`
	Opts   Options `msgpack:"opts"`
}

// SetUpdateReq adds Element to the set under Bucket/Key, or, with
// Remove, removes the adds of Element that Context (the context of a
// SetGet, or nil for every add the coordinator's copy holds) covers, in a
// bucket whose datatype is set. Coordinated as a put.
type SetUpdateReq struct {
	Bucket    string  `msgpack:"bucket"`
	Key       []byte  `msgpack:"key"`
	Element   []byte  `msgpack:"element"`
	Remove    bool    `msgpack:"remove,omitempty"`
	Context   []byte  `msgpack:"context"`
	Opts      Options `msgpack:"opts"`
	Forwarded bool    `msgpack:"forwarded,omitempty"`
}

// SetUpdateResp answers with the context of the set after the operation.
type SetUpdateResp struct {
	Context []byte `msgpack:"context"`
}

// SetGetReq reads a set: R, PR and notfound_ok apply as to a get.
type SetGetReq struct {
	Bucket string  `msgpack:"bucket"`
	Key    []byte  `msgpack:"key"`
	Opts   Options `msgpack:"opts"`
}

// SetGetResp is the set as the answering replicas' copies merge: its
// elements in byte order, and the context a remove sends to remove what
// this read saw.
type SetGetResp struct {
	Found    bool     `msgpack:"found"`
	Elements [][]byte `msgpack:"elements"`
	Context  []byte   `msgpack:"context"`
	Replicas []string `msgpack:"replicas"`
}

// CounterGetResp is the counter's value as the answering replicas' copies
// merge; 0 and Found false when none holds it.
type CounterGetResp struct {
	Found    bool     `msgpack:"found"`
	Value    int64    `msgpack:"value"`
	Replicas []string `msgpack:"replicas"`
}

// Fits reports whether the answer can be sent within maxFrame and the
// element limit: a set's elements are bounded only by the object limit,
// and a receiver refuses a frame past either.
func (m SetGetResp) Fits(maxFrame int) bool {
	// The map's header, its keys and found.
	bytes, elements := 64, 2*4
	bytes += mpcodec.LenSize(len(m.Elements)) + mpcodec.BytesSize(m.Context) + mpcodec.LenSize(len(m.Replicas))
	for _, e := range m.Elements {
		bytes += mpcodec.BytesSize(e)
	}
	for _, r := range m.Replicas {
		bytes += mpcodec.StringSize(len(r))
	}
	elements += len(m.Elements) + len(m.Replicas)
	return bytes+messageOverheadBytes <= maxFrame && elements <= MaxBodyElements()
}
