package wire

// Tombstone reaping messages (types 101 to 106), node to node. The node
// that coordinates a partition's reap asks every member whether a key's
// tombstone is the last word on it (check), then has every member remove
// it (reap). Witness asks a peer how many checks it knows this node
// answered: a data directory restored from an old copy knows fewer.

// ReapCheckReq asks whether any copy or hint of Items' keys of Partition
// on the receiver could hand back anything but the tombstone. Seen is the
// receiver's witness count as the coordinator last recorded it for the
// data directory Dir: a receiver running on Dir whose own count is lower
// answers from a copy of its directory older than its last check, and
// must stop.
type ReapCheckReq struct {
	Partition uint32 `msgpack:"partition"`
	Dir       string `msgpack:"dir"`
	Seen      uint64 `msgpack:"seen"`
	// Items are the tombstones: each the object the coordinator holds
	// under its key, tombstones only.
	Items []AAEObject `msgpack:"items"`
}

// Verdicts of a reap check, one per item.
const (
	// ReapClear: the receiver holds nothing of the key, or exactly the
	// tombstone, and no hint of it.
	ReapClear uint8 = 0
	// ReapDiffers: the receiver's copy is not the tombstone (a write
	// after it, an older version, a sibling).
	ReapDiffers uint8 = 1
	// ReapHinted: the receiver holds a hint of the key for some node.
	ReapHinted uint8 = 2
)

// ReapCheckResp gives a verdict per item, in order, and the receiver's
// directory and its witness count after recording this check.
type ReapCheckResp struct {
	Dir      string  `msgpack:"dir"`
	Witness  uint64  `msgpack:"witness"`
	Verdicts []uint8 `msgpack:"verdicts"`
}

// ReapReq asks the receiver to remove each item's key of Partition if its
// copy is still exactly the item's tombstone.
type ReapReq struct {
	Partition uint32 `msgpack:"partition"`
	// Items are the tombstones: each the object the coordinator holds
	// under its key, tombstones only.
	Items []AAEObject `msgpack:"items"`
}

// ReapResp counts the keys the receiver removed.
type ReapResp struct {
	Reaped int `msgpack:"reaped"`
}

// ReapWitnessReq asks for the sender's witness count as the receiver
// recorded it.
type ReapWitnessReq struct{}

// ReapWitnessResp is that count and the directory it is for: 0 and ""
// when the receiver never recorded one.
type ReapWitnessResp struct {
	Dir  string `msgpack:"dir"`
	Seen uint64 `msgpack:"seen"`
}
