// Package transport carries cairn's wire protocol over TCP: a Server that
// accepts connections, checks each one's handshake and serves its requests
// concurrently through a Handler, and a Pool of client connections that
// multiplexes many calls over a few connections per address.
//
// Requests run on a pool of long-lived workers shared by the server's
// connections, so the stack a handler grows is kept for the next request
// instead of being grown again on a fresh goroutine. A worker is started
// whenever none is free: the pool never makes a request wait.
//
// Both sides write through a queue drained by one writer goroutine per
// connection; the writer yields to the goroutines ready to run before it
// takes its batch, so a busy connection pays one syscall for many frames
// (write coalescing) and an idle one adds no latency.
//
// The server protects itself: a cap on open connections (the excess is
// answered "overloaded" and closed), a deadline on the handshake and on
// every frame (a peer that trickles bytes or stays silent is closed), a cap
// on requests in flight per connection (beyond it the connection is simply
// not read, which pushes back on the sender), and frame limits checked before
// allocation (package wire). A malformed frame closes that connection with
// an error frame and nothing else.
//
// The package must never let one connection's failure affect another,
// block the accept loop on a slow peer, or leave a goroutine behind after
// Shutdown or Close.
package transport
