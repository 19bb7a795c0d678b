package wire

import "github.com/cairnkv/cairn/internal/dvv"

// Hello opens a connection. Node is empty for clients; a cluster member
// names itself so that peers may use the replica messages.
type Hello struct {
	Cluster string `msgpack:"cluster"`
	Node    string `msgpack:"node,omitempty"`
	// Auth is reserved for credentials; nodes refuse a non-empty one until
	// authentication exists, rather than ignore it.
	Auth []byte `msgpack:"auth,omitempty"`
}

// HelloOK accepts a connection.
type HelloOK struct {
	Node    string `msgpack:"node"`
	Version uint8  `msgpack:"version"`
}

// GetReq reads a key.
type GetReq struct {
	Bucket string  `msgpack:"bucket"`
	Key    []byte  `msgpack:"key"`
	Opts   Options `msgpack:"opts"`
}

// Sibling is one live value in a get's answer.
type Sibling struct {
	Value     []byte `msgpack:"value"`
	WrittenAt int64  `msgpack:"written_at"` // Unix nanoseconds, informational
}

// GetResp answers a get: the live siblings and the context. Found is false
// when nothing is live; the context still comes back.
type GetResp struct {
	Found    bool      `msgpack:"found"`
	Siblings []Sibling `msgpack:"siblings"`
	Context  []byte    `msgpack:"context"`
	// Replicas names the nodes whose answers were merged.
	Replicas []string `msgpack:"replicas"`
}

// PutReq writes a value. Context is the opaque context of an earlier get
// (empty: replace nothing). Forwarded is set by a node that hands the write
// to a replica of the key, so the replica coordinates it instead of
// forwarding it again.
type PutReq struct {
	Bucket    string  `msgpack:"bucket"`
	Key       []byte  `msgpack:"key"`
	Value     []byte  `msgpack:"value"`
	Context   []byte  `msgpack:"context"`
	Opts      Options `msgpack:"opts"`
	Forwarded bool    `msgpack:"forwarded,omitempty"`
}

// PutResp answers a put with the context of the object after the write.
type PutResp struct {
	Context []byte `msgpack:"context"`
}

// DeleteReq writes a tombstone that replaces what Context covers.
type DeleteReq struct {
	Bucket    string  `msgpack:"bucket"`
	Key       []byte  `msgpack:"key"`
	Context   []byte  `msgpack:"context"`
	Opts      Options `msgpack:"opts"`
	Forwarded bool    `msgpack:"forwarded,omitempty"`
}

// DeleteResp answers a delete with the context after it.
type DeleteResp struct {
	Context []byte `msgpack:"context"`
}

// ReplicaGetReq asks a peer for its own copy of a key (node to node only).
type ReplicaGetReq struct {
	Partition uint32 `msgpack:"partition"`
	Bucket    string `msgpack:"bucket"`
	Key       []byte `msgpack:"key"`
}

// ReplicaGetResp is a peer's copy, unmerged.
type ReplicaGetResp struct {
	Found  bool       `msgpack:"found"`
	Object dvv.Object `msgpack:"object"`
}

// ReplicaPutReq asks a peer to sync an object into its copy (node to node
// only). For names the primary a fallback stands in for (empty when the
// receiver is a primary). Sync asks for an fsync before the answer.
type ReplicaPutReq struct {
	Partition uint32     `msgpack:"partition"`
	Bucket    string     `msgpack:"bucket"`
	Key       []byte     `msgpack:"key"`
	Object    dvv.Object `msgpack:"object"`
	Sync      bool       `msgpack:"sync"`
	For       string     `msgpack:"for,omitempty"`
}

// ReplicaPutResp says whether the peer made the write durable.
type ReplicaPutResp struct {
	Durable bool `msgpack:"durable"`
}

// MemberInfo is one ring member as the asked node sees it.
type MemberInfo struct {
	Name    string `msgpack:"name"`
	Addr    string `msgpack:"addr"`
	Gossip  string `msgpack:"gossip"`
	Status  string `msgpack:"status"`
	Version uint64 `msgpack:"version"`
	Alive   bool   `msgpack:"alive"`
}

// MembersResp lists the ring's members.
type MembersResp struct {
	Members []MemberInfo `msgpack:"members"`
}

// RingResp summarises the ring: Q, N, and partitions owned per member.
type RingResp struct {
	Partitions int            `msgpack:"partitions"`
	N          int            `msgpack:"n"`
	Version    uint64         `msgpack:"version"`
	Members    []string       `msgpack:"members"`
	Owned      map[string]int `msgpack:"owned"`
}

// StatusResp is a node's view of itself and the cluster.
type StatusResp struct {
	Node        string `msgpack:"node"`
	Addr        string `msgpack:"addr"`
	Cluster     string `msgpack:"cluster"`
	UptimeMs    int64  `msgpack:"uptime_ms"`
	RingVersion uint64 `msgpack:"ring_version"`
	Partitions  int    `msgpack:"partitions"`
	N           int    `msgpack:"n"`
	Members     int    `msgpack:"members"`
	Alive       int    `msgpack:"alive"`
	DiskBytes   int64  `msgpack:"disk_bytes"`
}

// DebugReplicasReq asks for every replica's own copy of a key.
type DebugReplicasReq struct {
	Bucket    string `msgpack:"bucket"`
	Key       []byte `msgpack:"key"`
	TimeoutMs uint32 `msgpack:"timeout_ms"`
}

// ReplicaCopy is one node's copy in a DebugReplicasResp. Err is set when the
// node could not be asked.
type ReplicaCopy struct {
	Node    string     `msgpack:"node"`
	Primary bool       `msgpack:"primary"`
	Found   bool       `msgpack:"found"`
	Err     string     `msgpack:"err,omitempty"`
	Object  dvv.Object `msgpack:"object"`
}

// DebugReplicasResp answers a DebugReplicasReq, primaries first.
type DebugReplicasResp struct {
	Partition uint32        `msgpack:"partition"`
	Replicas  []ReplicaCopy `msgpack:"replicas"`
}
