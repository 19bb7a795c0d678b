// Package node is the cairn daemon: it owns a node's storage, serves the wire
// protocol to clients and peers, coordinates requests, and exposes an admin
// HTTP port with metrics, health and pprof.
//
// node is where I/O happens and where the pure packages (ring, dvv, quorum)
// are wired to the network, the disk and the clock. It is the only package
// besides cmd that logs (zap) and registers Prometheus metrics, always on a
// registry of its own, never the global one.
//
// node must never let a request outlive its deadline, block a request on a
// global lock, or let one bad connection or malformed message affect others.
package node
