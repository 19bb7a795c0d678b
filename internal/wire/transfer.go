package wire

// Ownership transfer messages (types 71 to 76). Push and done are node to
// node: a partition's current owner streams it to a node that is to own it
// next (a target), in batches, then says it is complete. Transfers is an
// admin read any client may make.

// TransferPushReq asks a target to sync objects of Partition into its own
// copies (dvv sync: nothing is overwritten), for the change to the ring of
// version Next. The answer comes after they are durable. A node that is
// not a target of Partition for that change refuses the push.
type TransferPushReq struct {
	Partition uint32      `msgpack:"partition"`
	Next      uint64      `msgpack:"next"`
	Objects   []AAEObject `msgpack:"objects"`
}

// TransferPushResp counts the objects that changed the target's copies.
type TransferPushResp struct {
	Applied int `msgpack:"applied"`
}

// TransferDoneReq tells a target that every object of Partition as of the
// sender's snapshot was pushed and acknowledged: the target confirms it
// holds the partition for the change to Next (in its ring state entry).
// Keys and Bytes are what the stream carried, for the logs.
type TransferDoneReq struct {
	Partition uint32 `msgpack:"partition"`
	Next      uint64 `msgpack:"next"`
	Keys      int64  `msgpack:"keys"`
	Bytes     int64  `msgpack:"bytes"`
}

// TransferDoneResp acknowledges a TransferDoneReq.
type TransferDoneResp struct{}

// TransfersReq asks for the transfers of a membership change. Local asks
// the node for its own only; otherwise it asks every live member too.
type TransfersReq struct {
	Local bool `msgpack:"local"`
}

// TransferInfo is one partition's stream from one owner to one target.
// State is waiting, streaming, done or failed; rates are over the stream
// so far, and EtaMs is -1 when unknown.
type TransferInfo struct {
	Partition   uint32  `msgpack:"partition"`
	From        string  `msgpack:"from"`
	To          string  `msgpack:"to"`
	State       string  `msgpack:"state"`
	Keys        int64   `msgpack:"keys"`
	Bytes       int64   `msgpack:"bytes"`
	TotalKeys   int64   `msgpack:"total_keys"`
	TotalBytes  int64   `msgpack:"total_bytes"`
	KeysPerSec  float64 `msgpack:"keys_per_sec"`
	BytesPerSec float64 `msgpack:"bytes_per_sec"`
	EtaMs       int64   `msgpack:"eta_ms"`
	Error       string  `msgpack:"error,omitempty"`
}

// TransfersResp describes the change in flight as the answering node sees
// it, and the transfers of the nodes it asked. Unreachable lists the live
// members that did not answer.
type TransfersResp struct {
	Changing    bool           `msgpack:"changing"`
	Members     []string       `msgpack:"members"`
	Next        []string       `msgpack:"next"`
	Flipped     int            `msgpack:"flipped"`
	Moving      int            `msgpack:"moving"`
	Transfers   []TransferInfo `msgpack:"transfers"`
	Unreachable []string       `msgpack:"unreachable"`
}

// LeaveReq asks member Name to leave the ring: its partitions move to the
// other members, then it is removed and exits. Any node takes it and hands
// it to the member, which must be alive.
type LeaveReq struct {
	Name string `msgpack:"name"`
}

// LeaveResp acknowledges that the member is leaving.
type LeaveResp struct{}

// ReplaceReq makes member New, which joined and is not active yet, take
// member Old's place: Old's partitions move to New in one change, and Old
// is removed once it completes. Any node takes it and hands it to New,
// which must be alive; Old may be dead.
type ReplaceReq struct {
	Old string `msgpack:"old"`
	New string `msgpack:"new"`
}

// ReplaceResp acknowledges that the replacement is the change New makes.
type ReplaceResp struct{}

// JoinReq makes the asked node, alone in its own ring and holding no
// data, join the cluster of Seeds (members' gossip addresses) as a
// joining node.
type JoinReq struct {
	Seeds []string `msgpack:"seeds"`
}

// JoinResp acknowledges that the node is joining.
type JoinResp struct{}
