// Package membership keeps a node's view of the cluster: which nodes are in
// the ring (ring state, gossiped and merged) and which of them answer now
// (liveness, from hashicorp/memberlist). The two are separate on purpose:
// membership is not liveness (DESIGN.md section 4). A node that dies stays in
// the ring, and its partitions are served by fallbacks, until an operator
// removes it.
//
// # Ring state and the merge rule
//
// Ring state maps a node name to {data address, gossip address, status,
// version}. It travels three ways through memberlist's Delegate: changed
// entries as broadcasts (TransmitLimitedQueue, GetBroadcasts/NotifyMsg),
// the full state in every push/pull and join (LocalState/MergeRemoteState),
// and in the node meta a summary: the data address and the version of the
// ring the node builds. Entries merge one by one: the higher version wins; at
// equal versions a removal wins, then the larger content, so every node
// reaches the same state whatever order messages arrive in.
//
// Each node owns its own entry: on start it adds itself as active, raising
// the version only if the entry it finds (persisted or gossiped) says
// something else, so a restart with unchanged address and persisted state
// causes no churn. When gossip later contradicts it, the node re-asserts
// itself at a higher version. The one exception is removal: Remove is an
// operator's decision, a removed node stays removed even if it restarts, and
// the name cannot serve again.
//
// # Cluster metadata
//
// Beside the ring state travels cluster metadata (metadata.go): a small map
// of (prefix, key) to bytes that every node holds, for what the cluster
// must agree on that is not membership (users and roles; bucket properties
// later). Its entries ride in the same messages as the ring state's, a
// changed one as a broadcast, all of them in every push/pull, and are
// persisted with it. Each carries a version, a hybrid timestamp and the
// writing node's name, and merges entry by entry as the ring state's do:
// the higher version wins, deletions are tombstones kept for good. A
// message whose metadata is malformed is dropped whole, members included.
//
// Ring returns the ring over the active members, rebuilt only when that set
// changes. Persist and OnChange run on a goroutine the package owns, after
// coalescing changes.
//
// # The rejoin loop
//
// memberlist declares an unreachable node dead and, a little later, forgets
// it; it never contacts a forgotten node again. After a partition longer than
// that, both sides have forgotten each other and memberlist alone never
// merges them back. So every RejoinInterval the node joins the seeds, the
// members of the ring state it does not see alive, and live peers whose
// advertised ring version differs from its own. A join is a push/pull, which
// also repairs any ring state a lost broadcast left behind.
//
// # What it must never do
//
//   - Never drop a dead member from the ring or from Members: only Remove
//     takes a member out.
//   - Never block memberlist's callbacks: they update a map under a short
//     lock and signal; persisting, OnChange and re-advertising happen on the
//     package's own goroutine.
//   - Never trust remote bytes: ring state and node meta are checked by
//     mpcheck before decoding, then validated (names, addresses, statuses,
//     at most ring.MaxMembers entries); a malformed message, or one from
//     another cluster or for another partition count, is dropped whole and
//     counted in Stats, never merged in part, never a panic.
package membership
