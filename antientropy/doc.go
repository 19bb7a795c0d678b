// Package antientropy is the pure core of cairn's active anti-entropy
// (DESIGN section 7): the per-partition Merkle trees that make replicas
// comparable cheaply, the exchange that finds exactly the keys two replicas
// disagree on, the scheduler that walks every partition within a budget,
// and the pacing of tree rebuilds. Read repair fixes what is read and hints
// what a fallback saw; this is what makes every replica converge in the
// end, with traffic proportional to the differences.
//
// # Trees
//
// A partition's tree is a TicTac tree (as in Riak 2.9+): a fixed number of
// segments (leaves), each the XOR of KeyHash(bucket, key, Version(object))
// over the keys SegmentOf puts in it. XOR lets a write update its segment
// in O(1), taking the old version out and the new one in, without reading
// any other key; branches and the root are XORs of the segments below, so
// only segments are stored. The default shape:
//
//	                          root = XOR of all segments
//	                                      |
//	     +--------------------+-----------+----------+---------------------+
//	     |                    |                      |                     |
//	 branch 0             branch 1       ...     branch 30             branch 31
//	 XOR of segs 0-31     segs 32-63                segs 960-991          segs 992-1023
//	     |
//	 +---+---+-----+---+
//	 |   |         |   |
//	seg seg  ...  seg seg      segment i = XOR of KeyHash(b, k, v) over keys with SegmentOf(b, k) == i
//	 0   1         30  31
//
// A node saves each tree on clean shutdown (MarshalBinary) and loads it on
// start (UnmarshalBinary, checked), so a restart costs no rebuild. It must
// delete the saved copy once loaded, before the first write: a tree saved
// and then outlived by writes before a crash would be stale. After a crash,
// or when a tree is marked dirty, a Builder rebuilds it from storage in the
// background at the pace of a Pacer, while writes go on (see Builder for
// the cut that makes that exact).
//
// # Exchange
//
// An Exchange runs on the initiating replica and talks to its peer through
// the caller:
//
//	initiator                                   peer
//	   | QueryRoot --------------------------->  | tree
//	   | <------------------ shape, root         |        equal roots: done
//	   | QueryBranches ----------------------->  | tree
//	   | <------------------ B branch hashes     |        none differ: done
//	   | QuerySegments(differing branches) --->  | tree
//	   | <------------------ their segments      |        none differ: done
//	   | QueryKeys(<= SegmentsPerRound segs) ->  | storage  (repeated until every
//	   | <------------------ keys + versions     |           differing segment is
//	   |   (local key lists of the same segs     |           compared, or MaxKeys
//	   |    read from local storage)             |           keys were found)
//	   v Repair: missing here, missing there, differing
//
// The caller syncs each key of a Repair with DVV sync in the direction it
// names (both ways for differing keys), so nothing is overwritten; syncing
// a key that no longer differs is harmless. The exchange bounds its work
// per round (SegmentsPerRound key lists) and per exchange (MaxKeys found
// keys), counts what it found (ExchangeStats) and fails with an error
// wrapping cairn.ErrProtocol when the peer's answer does not fit the
// question. The peer answers tree queries with Tree.Answer and key queries
// from storage filtered by a SegmentSet.
//
// # Scheduling and pacing
//
// A Scheduler walks every partition the node replicates, one exchange per
// partition per MinInterval, rotating among its peers, within a routine
// budget of concurrent exchanges, exchanges per second and keys repaired
// per second; the partitions shared with a peer that just came back
// (Touch) go first, on an urgent budget of their own, so a return is
// caught up in seconds while the routine walk keeps its slow pace. The
// budgets are internal/pace token buckets; a Pacer turns the rebuild's
// rates into waits.
//
// # Must never
//
// The package must never do I/O, read a clock, draw random numbers, start
// a goroutine or log: node owns the network, storage, time and goroutines,
// and feeds this package values (times are nanoseconds passed in). A test
// in internal/lint enforces it. It must never decide which object wins:
// it only names keys that differ, and DVV sync merges them. It must never
// panic or allocate by a declared length on bytes from disk or a peer.
package antientropy
