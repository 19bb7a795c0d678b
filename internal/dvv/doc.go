// Package dvv implements cairn's versioned objects: a set of siblings, each
// tagged with the dot (actor, counter) of the write that made it, plus a
// version vector that records every dot the object has seen. It is the part of
// cairn that decides which writes replace which, and so the part that keeps
// the promise that no acknowledged write is lost (in buckets that keep
// siblings; a last-write-wins bucket gives it up by design).
//
// Two operations change objects:
//
//   - Update, run by the coordinator of a write, mints a new dot and drops
//     exactly the siblings covered by the client's context. It refuses to
//     mint past MaxCounter (2^63-1), so a counter never wraps to 0.
//   - Sync, run wherever two copies meet (replication, read repair, handoff,
//     anti-entropy), keeps each sibling unless the other copy has seen its dot
//     and no longer holds it. Sync is commutative, associative and idempotent.
//
// Which copy wins is a bucket's choice (Mode): Siblings keeps concurrent
// writes side by side, as above; LWW keeps only the write with the
// highest WrittenAt (SyncLWW, ties by dot), a join that any two copies
// reach in any order. CounterMode and SetMode hold a datatype's state (a
// PN-counter, Counter; an add-wins set, Set) in one sibling and merge by
// its join; Mode.Apply is the coordinator's operation on it, keyed by the
// minting actor. The vector is kept whole in every mode, so the rules
// below hold for all; for a datatype, the unique-dot rule is also what
// keeps an actor's counter totals and set adds from being swallowed by a
// join (an actor only adds to a state holding everything it added).
//
// Two rules are the caller's to honour. A context must name only dots that
// were minted: one naming more covers writes not made yet, which then
// vanish. Update cannot tell; the coordinator checks the context against
// its copy first (VV.Exceeds, VV.Clamp), and a node checks every object a
// peer sends with Object.Validate before merging it.
//
// The rule that keeps minted dots unique is the caller's to honour too: an actor
// id belongs to one incarnation of one node's copy of one partition, and an
// actor never mints a dot for a key without holding every dot it minted
// earlier for that key. A node that starts holding a partition with no data
// takes a fresh actor id (see internal/store).
//
// A third operation shrinks vectors: Prune drops the entries of retired
// actors no sibling names (Prunable lists them). It is safe only when the
// actor never mints again and no copy anywhere holds a replaced write of
// it; node/aae establishes that (docs/ARCHITECTURE.md, "Pruning retired
// actors"), since a copy the package cannot see decides it.
//
// The package is pure: no I/O, no clock, no randomness. Times are inputs.
package dvv
