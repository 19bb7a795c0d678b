// Package transport carries cairn's wire protocol over TCP: a Server that
// accepts connections, checks each one's handshake and serves its requests
// concurrently through a Handler, and a Pool of client connections that
// multiplexes many calls over one connection per address (ConnsPerAddr).
//
// Requests run on a pool of long-lived workers shared by the server's
// connections, so the stack a handler grows is kept for the next request
// instead of being grown again on a fresh goroutine. A worker is started
// whenever none is free: the pool never makes a request wait.
//
// Both sides write through a queue drained by one writer goroutine per
// connection; the writer yields to the goroutines ready to run before it
// takes its batch, so a busy connection pays one syscall for many frames
// (write coalescing) and an idle one adds no latency. On Linux a TCP
// socket is read and written with raw system calls (quietConn), which do
// not wake the runtime's monitor thread as the scheduler's entry into a
// system call does; the socket is non-blocking, so they never block.
//
// The server protects itself:
//
//   - Connections: a short deadline on the handshake, and a cap on the
//     sockets in their handshake at once (a newcomer beyond it closes the
//     oldest, so silent sockets cannot lock a real dialler out). Caps count
//     connections once their hello is accepted: clients under MaxConns and,
//     per remote IP, MaxConnsPerSource; peers (the hello names a node that
//     VerifyPeer accepts) under MaxPeerConns, apart, so that clients
//     filling their places never cut the cluster's nodes off. The excess
//     is answered "overloaded" and closed.
//   - Bytes: a connection holds its requests being served and its answers
//     not yet written, counted in bytes (a request at its own size or at
//     what the connection's answers cost lately, until its answer exists).
//     At MaxConnBytes the connection is not read until the writer drains
//     below it, and a request keeps its slot (MaxInFlight) until its
//     answer is written, so a client that sends without reading is pushed
//     back by TCP instead of filling the node's memory. Client connections
//     together draw on MaxInFlightBytes, peers on MaxPeerInFlightBytes; a
//     request read while its budget is spent is answered "overloaded" at
//     once, without being served, so "overloaded" always means the request
//     did nothing and may be sent again.
//   - Time and shape: a deadline on every frame (a peer that trickles bytes
//     or stays silent is closed), and frame limits checked before
//     allocation (package wire). A malformed frame closes that connection
//     with an error frame and nothing else.
//
// A request's context ends when its connection is lost, whether the reader
// or the writer finds out first.
//
// The package must never let one connection's failure affect another,
// block the accept loop on a slow peer, or leave a goroutine behind after
// Shutdown or Close.
package transport
