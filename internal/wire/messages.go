package wire

import "github.com/cairnkv/cairn/internal/dvv"

// Hello opens a connection. Node is empty for clients; a cluster member
// names itself so that peers may use the replica messages.
type Hello struct {
	Cluster string `msgpack:"cluster"`
	Node    string `msgpack:"node,omitempty"`
	// Auth is a client's credential: a user's token (docs/SECURITY.md).
	// A client with a certificate needs none; a node that accepts no
	// token (no TLS) ignores it.
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
	// Fallbacks names the nodes of Replicas that answered as fallbacks,
	// standing in for an unreachable primary.
	Fallbacks []string `msgpack:"fallbacks,omitempty"`
	// RingVersion is the answering node's ring version, so a client that
	// routes by its own copy of the ring learns that the copy is stale.
	RingVersion uint64 `msgpack:"ring_version,omitempty"`
	// ValuesOmitted says the live siblings were too large to send in one
	// answer (a frame's bytes or elements): Siblings is empty and
	// SiblingCount says how many there are, at least. The context is
	// complete: a write with it replaces every sibling, which is how an
	// application collapses an object it cannot read.
	ValuesOmitted bool `msgpack:"values_omitted,omitempty"`
	SiblingCount  int  `msgpack:"sibling_count,omitempty"`
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
	Context     []byte `msgpack:"context"`
	RingVersion uint64 `msgpack:"ring_version,omitempty"` // as in GetResp
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
	Context     []byte `msgpack:"context"`
	RingVersion uint64 `msgpack:"ring_version,omitempty"` // as in GetResp
}

// ReplicaGetReq asks a peer for its own copy of a key (node to node only).
// For names the primary the peer stands in for, when it is a fallback: its
// copy is then the hint it holds for that primary (merged with any data of
// its own). AllHints merges every hint the peer holds for the key, whoever
// it is for (debug replicas).
type ReplicaGetReq struct {
	Partition uint32 `msgpack:"partition"`
	Bucket    string `msgpack:"bucket"`
	Key       []byte `msgpack:"key"`
	For       string `msgpack:"for,omitempty"`
	AllHints  bool   `msgpack:"all_hints,omitempty"`
}

// ReplicaGetResp is a peer's copy, unmerged. Omitted says the copy was
// too large to send: Object then holds its version vector and no
// siblings, and Live counts its live siblings. Such an answer must never
// be merged or synced as an object (its vector covers siblings it does
// not carry, so a sync would drop them); it only contributes its vector to
// the context of an answer whose values are omitted.
type ReplicaGetResp struct {
	Found   bool       `msgpack:"found"`
	Object  dvv.Object `msgpack:"object"`
	Omitted bool       `msgpack:"omitted,omitempty"`
	Live    int        `msgpack:"live,omitempty"`
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

// MaxReplicaBatch bounds the items of a ReplicaPutBatchReq: a decoder
// refuses more before it allocates for them.
const MaxReplicaBatch = 256

// ReplicaPutBatchReq carries several replica writes to one peer in one
// message (node to node only). The peer applies them together (one
// store commit, one fsync) and answers each on its own: one item refused
// does not stop the others.
type ReplicaPutBatchReq struct {
	Items []ReplicaPutReq `msgpack:"items"`
}

// ReplicaPutBatchResp answers a ReplicaPutBatchReq item by item, in the
// request's order.
type ReplicaPutBatchResp struct {
	Items []ReplicaPutResult `msgpack:"items"`
}

// ReplicaPutResult is one item's answer: Durable as in ReplicaPutResp, or
// the error that refused it (nil when it was applied).
type ReplicaPutResult struct {
	Durable bool       `msgpack:"durable"`
	Err     *ErrorResp `msgpack:"err,omitempty"`
}

// MemberInfo is one ring member as the asked node sees it.
type MemberInfo struct {
	Name    string `msgpack:"name"`
	Addr    string `msgpack:"addr"`
	Gossip  string `msgpack:"gossip"`
	Status  string `msgpack:"status"`
	Version uint64 `msgpack:"version"`
	Alive   bool   `msgpack:"alive"`
	// Seat is the name whose partitions the member claims, when it took
	// another's place (cairn replace): the ring is ring.NewSeated over the
	// owners and their seats. Empty: its own name.
	Seat string `msgpack:"seat,omitempty"`
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
	// ObjectBytes is the part of DiskBytes the objects' tables take.
	ObjectBytes int64 `msgpack:"object_bytes"`
	// Admin is the node's admin HTTP address as it is bound (metrics,
	// health, pprof), empty when the node serves none. A host that binds
	// every interface (0.0.0.0, ::) is reachable at the data address's.
	Admin string `msgpack:"admin,omitempty"`
	// Reaped counts the tombstones this node removed since it started;
	// ReapPaused says why reaping is paused ("" when it is not).
	Reaped     uint64 `msgpack:"reaped"`
	ReapPaused string `msgpack:"reap_paused,omitempty"`
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

// RingStateResp is everything a client needs to place keys itself: Q, the
// configured replication factor, the ring version, and every member (removed
// ones included) with its data address, status and liveness as the answering
// node sees them. A client rebuilds the ring from the active members and
// checks that its version matches Version before routing by it.
type RingStateResp struct {
	Node       string       `msgpack:"node"`
	Partitions int          `msgpack:"partitions"`
	N          int          `msgpack:"n"`
	Version    uint64       `msgpack:"version"`
	Members    []MemberInfo `msgpack:"members"`
	// The node's limits and default deadline, so a client can refuse a
	// request the node would refuse, and send its own shorter deadline.
	MaxKeySize       int    `msgpack:"max_key_size"`
	MaxValueSize     int    `msgpack:"max_value_size"`
	RequestTimeoutMs uint32 `msgpack:"request_timeout_ms"`
	// MaxFrame is the largest frame the node sends or accepts: a client
	// raises its own limit to it, or it could not read the answers the
	// node may send (a get of an object near MaxObjectSize). MaxObjectSize
	// and SiblingLimit bound the object a client write may leave. Zero:
	// a node too old to say.
	MaxFrame      int `msgpack:"max_frame,omitempty"`
	MaxObjectSize int `msgpack:"max_object_size,omitempty"`
	SiblingLimit  int `msgpack:"sibling_limit,omitempty"`
}

// RemoveMemberReq takes a member out of the ring for good. A member the
// answering node sees alive is refused unless Force is set: removing a live
// node drops its replicas without handing them off.
type RemoveMemberReq struct {
	Name  string `msgpack:"name"`
	Force bool   `msgpack:"force,omitempty"`
}

// RemoveMemberResp answers a removal with the ring version after it.
type RemoveMemberResp struct {
	RingVersion uint64 `msgpack:"ring_version"`
}

// KeyringReq lists or changes the gossip encryption keys (base64, 16, 24
// or 32 bytes): Op is list, install, use or remove. The answering node
// applies it to itself and to every member it reaches, unless Local is
// set (that fan-out's own calls).
type KeyringReq struct {
	Op    string `msgpack:"op"`
	Key   string `msgpack:"key,omitempty"`
	Local bool   `msgpack:"local,omitempty"`
}

// KeyringNode is one node's keyring after a keyring request, or why the
// request failed there.
type KeyringNode struct {
	Node    string   `msgpack:"node"`
	Primary string   `msgpack:"primary,omitempty"`
	Keys    []string `msgpack:"keys,omitempty"`
	Error   string   `msgpack:"error,omitempty"`
}

// KeyringResp answers a keyring request, node by node.
type KeyringResp struct {
	Nodes []KeyringNode `msgpack:"nodes"`
}

// UsersReq lists or changes the users of a secure cluster (Op: list, add,
// remove, grant, revoke, token). Roles are role names (read, write,
// admin); TokenHash is the SHA-256 of a token the client made (add and
// token): the token itself never crosses the wire here. The change is
// made in cluster metadata, which gossip spreads to every node.
type UsersReq struct {
	Op        string   `msgpack:"op"`
	Name      string   `msgpack:"name,omitempty"`
	Roles     []string `msgpack:"roles,omitempty"`
	TokenHash []byte   `msgpack:"token_hash,omitempty"`
}

// UserInfo is one user as a node shows it: never the token's hash, only
// whether there is one.
type UserInfo struct {
	Name  string   `msgpack:"name"`
	Roles []string `msgpack:"roles"`
	Token bool     `msgpack:"token"`
}

// UsersResp answers a users request: every user for list, the user
// changed otherwise.
type UsersResp struct {
	Users []UserInfo `msgpack:"users"`
}

// HandoffItem is one hinted object handed to its owner.
type HandoffItem struct {
	Partition uint32     `msgpack:"partition"`
	Bucket    string     `msgpack:"bucket"`
	Key       []byte     `msgpack:"key"`
	Object    dvv.Object `msgpack:"object"`
}

// HandoffReq hands a batch of hints to the node they were kept for (node to
// node only). The owner syncs each object into its copy, never overwriting.
type HandoffReq struct {
	Items []HandoffItem `msgpack:"items"`
}

// HandoffResp answers a batch. Accepted is false when the owner is pacing
// its catch-up: nothing was applied and the sender waits RetryAfterMs.
// CreditBytes is how large the owner invites the next batch to be.
type HandoffResp struct {
	Accepted     bool   `msgpack:"accepted"`
	Applied      int    `msgpack:"applied"`
	RetryAfterMs uint32 `msgpack:"retry_after_ms"`
	CreditBytes  int64  `msgpack:"credit_bytes"`
}

// HintOwner is one owner's queue on the asked node.
type HintOwner struct {
	Owner      string `msgpack:"owner"`
	Pending    int    `msgpack:"pending"`
	Delivered  int    `msgpack:"delivered"`
	Bytes      int64  `msgpack:"bytes"`
	BacklogMs  int64  `msgpack:"backlog_ms"`
	Delivering bool   `msgpack:"delivering"`
	Failures   int    `msgpack:"failures"`
}

// HintsReq asks a node for the hints it keeps. It has no fields: the body
// of a TypeHints request is ignored.
type HintsReq struct{}

// HintsResp lists the hints the asked node keeps, per owner. Stored
// counts the hints the node wrote since it started, and Started (Unix
// nanoseconds) names that start: two answers with the same pair saw no
// hint written between them. Pruning relies on it (docs/ARCHITECTURE.md,
// "Pruning retired actors").
type HintsResp struct {
	Node    string      `msgpack:"node"`
	Owners  []HintOwner `msgpack:"owners"`
	Stored  uint64      `msgpack:"stored,omitempty"`
	Started int64       `msgpack:"started,omitempty"`
}
