// Package pace is cairn's one token bucket: the budget behind every rate
// the node keeps, whether it decides what may start now (anti-entropy's
// exchanges and repairs), admits or refuses work a peer offers (hinted
// handoff received by a returning owner), or says how long a loop that
// must do its work anyway should wait (a tree rebuild reading storage).
//
// A Bucket refills at a rate per second up to a burst and starts full.
// Time is an input: every method takes the caller's clock reading in
// nanoseconds, so the bucket is deterministic and tests drive it with
// plain numbers.
//
// It must never read a clock, sleep, do I/O, start a goroutine or lock:
// a caller that shares a bucket between goroutines guards it
// (internal/lint enforces the purity).
package pace
