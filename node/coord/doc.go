// Package coord coordinates one get, put or delete across the replicas of a
// key: it picks the targets, sends the request to them in parallel, feeds
// their answers to a quorum tracker, replaces a target that fails or stays
// silent with the next healthy fallback within the same request, answers
// once the tracker decides, and keeps going after that in the background
// (the remaining targets still get the write; late read answers feed read
// repair).
//
// The package talks to replicas only through Replicas, an interface defined
// here and implemented by node over its store and its peer connections, and
// learns liveness only through View. It imports no network, storage or
// gossip package, so every decision it makes can be scripted against a fake
// replica set (testdata/).
//
// The decisions live in request, a state machine in the style of etcd's
// raft: it takes answers, silences and the deadline as events and returns
// the calls to make; it does no I/O and reads no clock. run.go is the only
// code that starts calls and waits, for reads and writes alike. Each event
// is handled on the goroutine it arrives on (a call's answer where the
// call ends; a silence or the deadline on the goroutine serving the
// request, or on a timer's once it is answered), under the request's
// lock. The goroutine serving a request is woken when an answer decides
// it; the last answer finishes it. No goroutine waits for a decided
// request.
//
//	client ─▶ node ─▶ Coordinator.Put ─┬─ forward ──▶ Replicas.Forward (another node coordinates)
//	                                   └─ Replicas.Mint (local copy, new dot)
//	                                        └─ context ahead of the copy: Replicas.Read × targets,
//	                                           Replicas.Write (self), Mint again; refuse or clamp
//	                                        └─ drive: Replicas.Write × targets ─▶ quorum.WriteTracker
//	client ─▶ node ─▶ Coordinator.Get ──── drive: Replicas.Read × targets ─▶ quorum.ReadTracker
//	                                        └─ (background) read repair: Replicas.Write
//
// coord must never log, register metrics, or call a replica without the
// request's deadline; it reports what it did through Observer.
package coord
