// Package aae is the node's active anti-entropy driver (DESIGN section 7):
// it keeps a Merkle tree per partition current through the store's write
// hook (Trees), saves them on a clean shutdown and rebuilds them after a
// crash, runs the exchanges antientropy.Scheduler picks, and answers its
// peers' exchanges (ServeQuery, ServeFetch, ServePush) and status
// requests (ServeStatus). The pure decisions (what differs, what to ask,
// which exchange next) are package antientropy's; this package does the
// asking, the reading and the syncing.
//
// An AAE is built from a Config (the budgets, with documented defaults)
// and Deps (exactly what it uses: its part of the store, a caller of
// peers, a membership view, a key check, a clock, a logger and a metrics
// registry). node hooks the Trees into the store's options before opening
// it, builds the AAE before accepting writes, runs Run on a goroutine it
// owns, reports membership changes with the peers that came back
// (MembershipChanged: at the node's start, every peer alive), and
// dispatches the anti-entropy message types to the Serve methods.
//
// The rule of a return: the partitions shared with a peer that came back
// (or with every peer, when this node starts) are exchanged first, on an
// urgent budget of their own (more exchanges at once and per second, and
// more repaired keys per second, than the routine walk). A tree still
// waiting for the rebuild after a crash is rebuilt when an exchange needs
// it, so exchanges never wait for the whole rebuild.
//
// It also prunes the version-vector entries of actors this node retired
// (prune.go; docs/ARCHITECTURE.md, "Pruning retired actors"): a pass
// every PruneInterval, bounded in objects read and keys pruned, prunes a
// key only after every copy of it in the cluster equalled this node's
// twice, PruneSettle apart, with no hint kept or written anywhere, and
// each copy only if it still equals the one looked at.
//
// It must never overwrite an object (every repair is a DVV sync, so
// concurrent writes become siblings), compare a tree that writes have
// outlived (saved trees are deleted once loaded, before the first write),
// answer a connection that is not a peer or a key outside the partition
// named, let two exchanges repair one partition of a node at once (the
// lease), or hold a lock across a network call. It must never prune an
// actor it did not retire (or, for a peer, one not named after the
// peer), an entry a sibling names, or a copy that differs from the one
// every replica agreed on.
package aae
