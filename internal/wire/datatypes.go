package wire

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

// CounterGetResp is the counter's value as the answering replicas' copies
// merge; 0 and Found false when none holds it.
type CounterGetResp struct {
	Found    bool     `msgpack:"found"`
	Value    int64    `msgpack:"value"`
	Replicas []string `msgpack:"replicas"`
}
