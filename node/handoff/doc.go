// Package handoff is the node's hinted-handoff driver (DESIGN section 6).
// As a fallback it delivers the hints it keeps to their owners once they
// are back: it plans rounds with hints.Planner, streams each owner's
// pending hints in batches from the owner's cursor, and marks a batch
// delivered only after the owner acknowledged it, so a crash of either
// side resumes where it stopped. As an owner it applies the batches its
// fallbacks send (ServeHandoff) at a pace it sets itself, one token bucket
// (internal/pace) for all of them: a batch it cannot take now is refused
// whole with the time to wait, and an accepted one comes back with an
// invitation for the next batch's size. The hints of an owner an operator
// removed from the ring go instead to the current primaries of their
// partitions, each hint to all of them (Handoff.retarget says why that
// cannot lose a write).
//
// A Handoff is built from a Config (the pace, with documented defaults)
// and Deps (exactly what it uses: its part of the store, a caller of
// peers, a membership view, a key check, a clock, a logger and a metrics
// registry); node constructs it, runs Run on a goroutine it owns, tells it
// when a peer came back (Poke), and dispatches TypeHandoff and TypeHints
// to ServeHandoff and ServeHints.
//
// It must never delete a hint its owner (for a removed owner: every new
// primary of its partition) has not acknowledged, write to the
// owner's copy anything but a DVV sync (a batch delivered twice changes
// nothing), accept handoff from a connection that is not a peer or for a
// key outside the partition named, or hold a lock across a network call.
package handoff
