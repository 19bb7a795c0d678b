// Package store is a cairn node's local storage: one pebble database holding
// the objects of every partition the node replicates, the actor ids that
// mint their dots, node metadata, the hints it keeps for unreachable owners,
// and anti-entropy records (saved Merkle trees). It serialises the
// read-modify-write of each key, iterates a partition from a consistent
// view, tells a hook about every object write (for anti-entropy), and drops
// a partition after handoff.
//
// # Key layout
//
// The first byte of a pebble key names what the record is. Partitions are
// big-endian so a partition's objects are one contiguous range; the bucket is
// length-prefixed so no bytes in a bucket or key can make two (bucket, key)
// pairs encode alike.
//
//	+-----+----------------+----------------------+--------+-----+
//	| 'o' | partition (4B) | uvarint(len(bucket)) | bucket | key |  object record
//	+-----+----------------+----------------------+--------+-----+
//	| 'm' | name                                                   metadata value
//	+-----+-----+----------------+
//	| 'i' | 'a' | partition (4B) |                                 actor id (UTF-8)
//	| 'i' | 'h' | partition (4B) |                                 hint actor id (UTF-8)
//	| 'i' | 'r' |                                                  running marker
//	| 'i' | 'x' | partition (4B) | actor id                         retired actor (empty value; retired.go)
//	+-----+-----+---------------------+-------+----------------+------------------+--------+-----+
//	| 'h' | 'r' | uvarint(len(owner)) | owner | partition (4B) | uvarint(len(b))  | bucket | key |  hint record
//	| 'h' | 'c' | owner                                                                         delivery cursor
//	+-----+-----+
//	| 'a' | key (opaque to the store)                              anti-entropy record (saved Merkle trees)
//	+-----+
//
// Partition p's objects lie in ['o'|p, 'o'|p+1) (['o'|0xffffffff, 'p') for
// the last partition); scans and DropPartition use exactly those bounds.
//
// # Object records
//
//	+-------------+--------------------------------------------------+
//	| version (1) | msgpack map {"s": [sibling...], "vv": {actor: n}} |
//	+-------------+--------------------------------------------------+
//	sibling = {"d": {"a": actor, "c": counter}, "v": value, "t": tombstone, "w": written_at}
//
// The msgpack is the library's encoding of dvv.Object by its struct tags,
// with compact integers. Siblings are written in dot order and vector entries
// in actor order (dvv.VV's EncodeMsgpack) without zero counters, so equal
// objects encode to equal bytes. An unknown version byte is an error naming
// it.
//
// # Hints
//
// A hint record is a version byte, then msgpack {"o": object, "d":
// delivered, "s": pending since}. One owner's hints are one contiguous range
// in (partition, bucket, key) order: its delivery queue, read from the
// cursor onwards. A key written many times while its owner is away stays one
// hint, merged by dvv.Sync. Delivered hints are kept until their partition's
// episode closes (no hint of the partition pending for any owner), then
// deleted together with the partition's hint actor, so that actor never
// mints for a key without holding its earlier dots (see hints.go).
//
// The bytes of each owner's hints, and of all of them, are counted in
// memory (rebuilt by a scan at Open), so that Options.MaxHintBytesPerOwner
// and MaxHintBytes can refuse a hint write that would grow past them with
// no read: the check and the count are one step under one lock. A refused
// write changes nothing, and no hint is ever dropped to make room.
//
// # Durability
//
// Every write goes to pebble's WAL. Modify fsyncs before returning when its
// caller passes sync=true or the store was opened without NoSyncWrites (the
// default), so no acknowledged write is lost to kill -9 or power loss. With
// NoSyncWrites, a write with sync=false is acknowledged from memory: pebble
// hands the WAL to the OS in the background, so a kill -9 can lose the last
// moments of such writes and a power loss everything since the last fsync
// (any synced write, metadata write or actor creation fsyncs all WAL before
// it). Concurrent synced writes share fsyncs (group commit), so sync costs
// latency far more than throughput. A write is committed under its key's
// lock and waits for its fsync after releasing it (commit.go), so writers
// of one hot key share fsyncs too: the WAL is written in commit order, and
// a write's fsync covers every write committed before it. Metadata and
// actor ids are always synced. On Linux the WAL's appends and fdatasyncs
// are raw system calls while the disk syncs quickly (walfile.go): they
// keep their processor for the sync instead of paying the runtime's
// hand-off, and turn ordinary while slow syncs come often.
//
// # Object cache
//
// In front of pebble sits a cache of object records (cache.go), bounded in
// bytes (Options.ObjectCacheBytes), that answers the read of a
// read-modify-write and most Gets with a map lookup instead of a walk of
// pebble's memtable skiplist. It holds the records' bytes, so every read
// still decodes an object of its own. Every write of an object key updates
// it under the key's lock (Modify, ModifyUnsynced, DropPartition), and a
// Get fills it only when no write of its stripe started during its read,
// so it never answers with an object pebble no longer holds. A written key
// enters at once (its next write reads it); a key only read enters on its
// second read in a while, so that reads over a keyspace far larger than
// the cache do not churn it.
//
// # Incarnations
//
// Pebble makes a write visible before its fsync completes, so a Get can
// hand out a dot, and the next writer of the key can build on it, that a
// crash then erases from this copy; other replicas may keep it. If the same actor later minted that dot again for
// another write, replicas would treat the two as one and lose a write. The
// store therefore keeps a running marker while open: when Open finds one left
// by a Store that never Closed, it retires every actor id, and each partition
// gets a fresh actor on its next write (Stats.UncleanStart says so). A fresh
// directory and DropPartition also mean fresh actors. This is how the store
// keeps DESIGN section 3's rule that an actor id belongs to one incarnation of
// one node's copy of one partition. The ids it retires are recorded
// ('i' 'x', RetiredActors), with those a peer says it pruned (RetireActors):
// anti-entropy may prune a retired actor's version-vector entries, and only
// a retired actor's (docs/ARCHITECTURE.md, "Pruning retired actors").
//
// # Must never
//
//   - Take a global lock on the read or write path: each key has a stripe
//     lock, and Close waits for calls through atomics, not a lock.
//   - Hold a key's lock across the fsync of a Modify or ModifyHint (the
//     request path), or acknowledge a synced write before its fsync
//     returned.
//   - Make a raw system call on a file's descriptor outside its
//     syscall.RawConn, where a Close could recycle it to another file
//     under the call.
//   - Answer from the object cache with a record pebble no longer holds:
//     anything that writes object keys updates the cache under the key's
//     lock.
//   - Decode bytes read from disk without checking every declared length
//     first (mpcheck, or dvv's hand-written object decoder, which checks as
//     it reads), or panic or allocate by a declared length on a corrupt
//     record: corruption is an ErrCorrupt error.
//   - Keep a slice of pebble's buffer after its closer runs: decodeObject
//     copies the record once and cuts the values from the copy.
//   - Drop or shorten a hint to stay under a hint cap, or let the count of
//     hint bytes fall below what is stored (the caps would be passed).
//   - Log: pebble's messages go to Options.Logger (discarded by default) and
//     the store's own figures are in Stats.
package store
