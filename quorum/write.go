package quorum

import (
	"fmt"

	"github.com/cairnkv/cairn"
)

// WriteTracker decides one put or delete from its targets' acknowledgements.
// The write succeeds once W targets acknowledged it, PW of them primaries
// and DW of them durably; it fails as soon as the targets still pending can
// no longer lift every count to its need, or when the deadline passes first.
type WriteTracker struct {
	op    string
	spec  Spec
	tally tally

	acks        int
	primaryAcks int
	durableAcks int

	decided bool
	err     *cairn.QuorumError // nil when decided for success
}

// NewWriteTracker starts tracking a write of op (put or delete) sent to
// targets. A write that cannot succeed even before any answer (no targets,
// or fewer than W) is decided at once.
func NewWriteTracker(op string, targets []Target, spec Spec) *WriteTracker {
	t := &WriteTracker{op: op, spec: spec, tally: newTally(targets)}
	t.decide(false)
	return t
}

// Ack records that node stored the write; durable means it fsynced it.
func (t *WriteTracker) Ack(node string, durable bool) {
	i, ok := t.tally.settle(node, answered, "")
	if !ok {
		return
	}
	t.acks++
	if t.tally.slots[i].target.Primary {
		t.primaryAcks++
	}
	if durable {
		t.durableAcks++
	}
	t.decide(false)
}

// Add makes target one more target of the write, pending: a fallback that
// replaces a target that failed or stayed silent. Add it before recording
// the failure it answers (Fail), so that the write is not decided as
// impossible in between. A node that is already a target is not added
// again. After the decision, Add still records the target and changes
// nothing.
func (t *WriteTracker) Add(target Target) {
	if t.tally.add(target) {
		t.decide(false)
	}
}

// Fail records that node did not store the write; reason is short
// ("timeout", "unreachable", an error's text) and shows in the error.
func (t *WriteTracker) Fail(node string, reason string) {
	if _, ok := t.tally.settle(node, failed, reason); ok {
		t.decide(false)
	}
}

// Timeout records that the deadline passed: every target still pending
// failed with "timeout". It decides the write if nothing had.
func (t *WriteTracker) Timeout() {
	t.tally.timeout()
	t.decide(true)
}

// Done reports whether the write is decided: it succeeded, success became
// impossible, or the deadline passed.
func (t *WriteTracker) Done() bool { return t.decided }

// Err is nil once the write succeeded, and otherwise a *cairn.QuorumError.
// Before the write is decided it describes the first need not yet met, with
// the targets still waited for marked "pending", so that an early caller is
// never told of a success that has not happened.
func (t *WriteTracker) Err() error {
	if t.decided {
		if t.err == nil {
			return nil
		}
		return t.err
	}
	for _, n := range t.needs() {
		if !n.met() {
			return t.quorumError(n, false)
		}
	}
	// Unreachable: met needs are decided in the event that met them.
	return nil
}

func (t *WriteTracker) String() string {
	return fmt.Sprintf("acks=%d primaries=%d durable=%d pending=%s",
		t.acks, t.primaryAcks, t.durableAcks, t.tally.pendingNodes())
}

func (t *WriteTracker) needs() []need {
	return []need{
		{kind: "w", need: t.spec.W, got: t.acks, more: t.tally.pending},
		{kind: "pw", need: t.spec.PW, got: t.primaryAcks, more: t.tally.pendingPrimaries},
		{kind: "dw", need: t.spec.DW, got: t.durableAcks, more: t.tally.pending},
	}
}

// decide settles the outcome the first time the counts allow it and never
// again: a write acknowledged to the client stays acknowledged whatever
// answers come late.
func (t *WriteTracker) decide(timedOut bool) {
	if t.decided {
		return
	}
	ok, failed := decide(t.needs())
	switch {
	case ok:
		t.decided = true
	case failed != nil:
		t.decided = true
		t.err = t.quorumError(*failed, timedOut)
	}
}

func (t *WriteTracker) quorumError(n need, timedOut bool) *cairn.QuorumError {
	return &cairn.QuorumError{Op: t.op, Kind: n.kind, Need: n.need, Got: n.got,
		Of: len(t.tally.slots), TimedOut: timedOut, Replicas: t.tally.outcomes()}
}
