// Package hints decides the pace of hinted handoff's deliveries: which
// owners a fallback delivers to and when, and how long it waits after a
// failure (Planner, with Backoff). How much a returning owner accepts and how soon is
// the receiver's token bucket (internal/pace, run by node/handoff), so the
// node that has been away sets the pace of its own catch-up rather than
// being flattened by every fallback at once.
//
// The hints themselves live in internal/store; node reads them, sends them
// and marks them delivered. This package is the pure part: it takes the
// state it is told and the time as an input (Unix nanoseconds), and returns
// decisions.
//
// It must never do I/O, read a clock, draw randomness or start goroutines
// (internal/lint enforces it).
package hints
