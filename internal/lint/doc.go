// Package lint holds tests that hold the whole module to its structural
// rules: the pure packages (ring, quorum, internal/dvv, and the schedulers
// that join them) import no network, disk, clock, randomness or logging and
// start no goroutines, so every decision they make is a function of their
// inputs (STYLE principle 2).
//
// It has no code of its own and must never grow any: it only reads the
// module's source.
package lint
