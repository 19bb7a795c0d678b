// Package hints decides the pace of hinted handoff: which owners a fallback
// delivers to and when (Planner), how long it waits after a failure
// (Backoff), and how much a returning owner accepts and how soon (Throttle,
// run by the receiver, so the node that has been away sets the pace of its
// own catch-up rather than being flattened by every fallback at once).
//
// The hints themselves live in internal/store; node reads them, sends them
// and marks them delivered. This package is the pure part: it takes the
// state it is told and the time as an input (Unix nanoseconds), and returns
// decisions.
//
// It must never do I/O, read a clock, draw randomness or start goroutines
// (internal/lint enforces it).
package hints
