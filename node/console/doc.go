// Package console is the web console and the JSON API behind it, served on
// every node's admin HTTP port: the whole cluster at a glance (members,
// ownership, request rates and latency), replication health (hints waiting
// for their owners, anti-entropy per partition, repairs) and a key
// inspector that sets every replica's copy of a key side by side.
//
// Any node serves the whole cluster's picture: it reports on itself from
// memory and asks every other member's admin port for that member's own
// report (GET /api/v1/node), each call under a deadline, so a member that
// does not answer costs the page at most that deadline and is named as not
// answering, never waited for. Each node keeps a few minutes of its own
// request metrics (History, sampled once a second) for the charts.
//
//	browser ──GET /api/v1/cluster──▶ node A ──GET /api/v1/node (deadline)──▶ B, C, ...
//	                                   │ its own report from memory
//	                                   ▼
//	                 members, ring, series summed over nodes, hints, AAE grid
//
// The page is HTML, CSS and a little hand-written JavaScript embedded in the
// binary: no build step, nothing fetched from elsewhere.
//
// console must never write: every route is a read (a GET or HEAD), and
// anything else is refused. It never holds a lock of the node across a
// network call, and never waits on a peer without a deadline. All of its
// routes are one http.Handler (Console.Handler), so that the admin-role
// check of the admin port (DESIGN section 13) wraps them in one place.
package console
