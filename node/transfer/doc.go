// Package transfer moves partitions to their next owners during a
// membership change (DESIGN section 4, "Membership changes"), so that a
// node that joins owns a partition only once it holds its data.
//
// The change itself lives in the ring state (membership, ring.Placement):
// for each partition its current owners (Cur), its next owners (Next), and
// the targets, next owners that are not current ones. This package does
// the moving:
//
//	sender (first live current owner of p)        target T of p
//	  snapshot; count keys and bytes of p
//	  scan p from the cursor (p, T) ------ TransferPush{p, next, objects} -->  dvv.Sync each, fsync
//	  save cursor after each ack    <----- TransferPushResp ------------------
//	  ...
//	  ---------------------------------- TransferDone{p, next} ------------>  mark p held (ring state,
//	  delete cursor                                                          gossiped): p flips once
//	                                                                         every target of p holds it
//
// Writes go to targets as pending replicas from the moment every live node
// advertises the change (Members.PeersKnow), and a stream starts only
// then, so what the snapshot misses reaches the target as a write. The
// receiver merges with dvv sync, never overwriting, so writes racing the
// stream are safe, and a batch sent twice (a resumed stream) changes
// nothing. The cursor is durable (store metadata, per partition, target
// and change): a sender that crashes resumes after the last batch
// acknowledged; a target that crashes keeps what it fsynced and is sent
// the rest when it is back.
//
// A joining node makes itself active once every partition flipped
// (Members.Activate). Streams are paced in bytes per second per sending
// node and limited in number; each state change is logged and counted
// (cairn_transfer_*).
//
// What it must never do: mark a partition held before every object of the
// snapshot was acknowledged; overwrite a target's copy (only dvv.Sync);
// accept a push or a done for a change or partition it is not a target
// of; trust a peer's object (keys and dots are checked before anything is
// written); or block on a peer without a deadline.
package transfer
