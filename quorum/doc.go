// Package quorum decides the outcome of one get, put or delete: which nodes
// the request goes to (Targets), whether an impossible consistency level
// should be refused before anything is sent (Spec.Validate), and, as the
// replicas answer, when the request has its answer and what that answer is
// (WriteTracker, ReadTracker).
//
// The trackers are state machines in the style of etcd's raft: the caller
// feeds them events (an ack, a reply, a failure, the deadline passing) and
// asks for decisions (Done, Err, Result, Repairs). A tracker decides as soon
// as the events allow it, success or failure, and never changes its decision
// afterwards; later events are still recorded so that a read keeps merging
// late replies for read repair. A failed decision is a *cairn.QuorumError
// that names the constraint that could not be met, the counts, and what each
// target did.
//
// The package must never do I/O, read a clock, draw random numbers, start a
// goroutine or log: it decides only from the events it was given, so every
// decision can be replayed from a script (see testdata/). The node package
// owns the network, the deadline and the goroutines. A test enforces the
// forbidden imports.
//
// Trackers are not safe for concurrent use: one goroutine at a time feeds a
// tracker, as node does by draining a channel of replica answers.
package quorum
