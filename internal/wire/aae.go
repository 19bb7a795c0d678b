package wire

import "github.com/cairnkv/cairn/internal/dvv"

// Anti-entropy messages (types 61 to 68). Query, fetch and push are node to
// node: one replica of a partition (the initiator) compares its Merkle tree
// with another's (the responder) and syncs the keys that differ. The
// responder's partition is leased to one initiator at a time: every message
// of an exchange after the root query takes or renews the lease, a message
// from another initiator while it is held is refused as overloaded, and
// the initiator's End query (or the lease's expiry) releases it. So two
// replicas never repair the same partition of a third at once, and a key
// crosses the network about once per replica that missed it.

// AAEQueryReq asks the responder's tree of Partition (Kind 1 root, 2
// branches, 3 segments under Branches, 4 key lists of Segments, from
// storage), or (Kind 5, AAERoots) the roots of every tree in Partitions at
// once: what a node compares when a peer comes back, before exchanging
// only the partitions that differ. End instead releases the initiator's
// lease on the partition; its answer is empty.
type AAEQueryReq struct {
	Partition  uint32   `msgpack:"partition"`
	Kind       uint8    `msgpack:"kind"`
	Branches   []int    `msgpack:"branches,omitempty"`
	Segments   []int    `msgpack:"segments,omitempty"`
	End        bool     `msgpack:"end,omitempty"`
	Partitions []uint32 `msgpack:"partitions,omitempty"`
}

// AAERoots is the query Kind that asks for many roots at once.
const AAERoots = 5

// AAEKey is one key of a key list and the version of the responder's
// object: a 64-bit digest of its siblings and version vector. Encoded as
// an array [bucket, key, version] to keep long lists short.
type AAEKey struct {
	_msgpack struct{} `msgpack:",as_array"`
	Bucket   string
	Key      []byte
	Version  uint64
}

// AAEAnswerResp answers an AAEQueryReq. A root answer carries the tree's
// Shape (Segments, Branches), Root and Keys (how many keys it holds, so
// the initiator can size its key-list rounds); branch and segment answers
// carry Hashes; a key answer carries KeyList in canonical order.
type AAEAnswerResp struct {
	Segments int      `msgpack:"segments,omitempty"`
	Branches int      `msgpack:"branches,omitempty"`
	Root     uint64   `msgpack:"root,omitempty"`
	Keys     int64    `msgpack:"keys,omitempty"`
	Hashes   []uint64 `msgpack:"hashes,omitempty"`
	KeyList  []AAEKey `msgpack:"key_list,omitempty"`
	// Roots answers an AAERoots query, one per partition asked, in order;
	// NotReady lists the partitions whose tree could not be compared (it is
	// being rebuilt): their root is 0 and means nothing.
	Roots    []uint64 `msgpack:"roots,omitempty"`
	NotReady []uint32 `msgpack:"not_ready,omitempty"`
}

// AAEKeyRef names one key of a fetch.
type AAEKeyRef struct {
	_msgpack struct{} `msgpack:",as_array"`
	Bucket   string
	Key      []byte
}

// AAEObject is one key's object in a fetch answer or a push.
type AAEObject struct {
	Bucket string     `msgpack:"b"`
	Key    []byte     `msgpack:"k"`
	Object dvv.Object `msgpack:"o"`
}

// AAEFetchReq asks for the responder's own objects of keys of Partition.
type AAEFetchReq struct {
	Partition uint32      `msgpack:"partition"`
	Keys      []AAEKeyRef `msgpack:"keys"`
}

// AAEFetchResp answers the first Answered keys asked for, in order (the
// responder stops early to bound its answer; the initiator asks again for
// the rest): the objects it holds of them. A key it does not hold is left
// out.
type AAEFetchResp struct {
	Objects  []AAEObject `msgpack:"objects"`
	Answered int         `msgpack:"answered"`
}

// AAEPushReq asks the responder to sync objects into its own copies of
// keys of Partition (dvv sync: nothing is overwritten). The answer comes
// after they are durable.
//
// With Prune set it is a prune instead (docs/ARCHITECTURE.md, "Pruning
// retired actors"): Prune lists actors the initiator retired (their ids
// begin with its name), and the responder drops their entries from the
// vector of each key whose copy equals the object pushed (the initiator's
// own copy, which every copy of the key in the cluster equalled twice,
// a settle time apart). A copy that differs is left alone; nothing is
// synced.
type AAEPushReq struct {
	Partition uint32      `msgpack:"partition"`
	Objects   []AAEObject `msgpack:"objects"`
	Prune     []string    `msgpack:"prune,omitempty"`
}

// AAEPushResp counts the objects that changed the responder's copies.
type AAEPushResp struct {
	Applied int `msgpack:"applied"`
}

// AAEStatusReq asks a node about its anti-entropy. Trees asks for the
// trees too, at most a page of them from partition TreesFrom on.
type AAEStatusReq struct {
	Trees     bool   `msgpack:"trees,omitempty"`
	TreesFrom uint32 `msgpack:"trees_from,omitempty"`
}

// AAETreeInfo is one partition's tree on the asked node.
type AAETreeInfo struct {
	Partition uint32 `msgpack:"partition"`
	Root      uint64 `msgpack:"root"`
	Keys      int64  `msgpack:"keys"`
	// Ready is false while the tree is being rebuilt.
	Ready bool `msgpack:"ready"`
	// Replicated: the node is one of the partition's primaries now.
	Replicated bool `msgpack:"replicated"`
	// LastExchangeMs is the age of the last completed exchange of the
	// partition, -1 if none; InSync says it found nothing to repair.
	LastExchangeMs int64 `msgpack:"last_exchange_ms"`
	InSync         bool  `msgpack:"in_sync"`
}

// AAEStatusResp is a node's anti-entropy status. Ages are milliseconds,
// -1 for never.
type AAEStatusResp struct {
	Node    string `msgpack:"node"`
	Enabled bool   `msgpack:"enabled"`
	// Partitions the node replicates; InSync of them had their last
	// exchange find nothing to repair; NeverExchanged have had none.
	Partitions     int `msgpack:"partitions"`
	InSync         int `msgpack:"in_sync"`
	NeverExchanged int `msgpack:"never_exchanged"`
	// Trees held, and NotReady of them still being rebuilt.
	Trees    int `msgpack:"trees"`
	NotReady int `msgpack:"not_ready"`
	// OldestExchangeMs is the age of the least recently exchanged
	// replicated partition (-1 if one was never exchanged, or none is
	// replicated).
	OldestExchangeMs int64  `msgpack:"oldest_exchange_ms"`
	Running          int    `msgpack:"running"`
	Exchanges        uint64 `msgpack:"exchanges"`
	Failures         uint64 `msgpack:"failures"`
	KeysFetched      uint64 `msgpack:"keys_fetched"`
	KeysPushed       uint64 `msgpack:"keys_pushed"`
	BytesSent        uint64 `msgpack:"bytes_sent"`
	BytesReceived    uint64 `msgpack:"bytes_received"`
	Rebuilds         uint64 `msgpack:"rebuilds"`
	// TreeList is a page of trees, by partition, when asked for;
	// TreesNext is where the next page starts, when there is one.
	TreeList  []AAETreeInfo `msgpack:"tree_list,omitempty"`
	TreesNext uint32        `msgpack:"trees_next,omitempty"`
	TreesMore bool          `msgpack:"trees_more,omitempty"`
}
