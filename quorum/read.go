package quorum

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
)

// ReadTracker decides one get from its targets' replies and merges what they
// hold. The get succeeds once R targets replied, PR of them primaries; a
// not-found reply counts toward R only when the spec says NotFoundOK, and a
// fallback's not-found reply only once no primary is still pending. It
// fails as soon as the targets still pending cannot bring enough replies, or
// when the deadline passes first.
//
// After the decision the tracker keeps merging late replies, so that read
// repair, once every target answered or the deadline passed, repairs against
// everything that came back rather than only the first R answers.
type ReadTracker struct {
	spec  Spec
	tally tally
	// copies holds each target's reply, by slot; a not-found reply is the
	// empty object.
	copies []dvv.Object
	merged dvv.Object
	// omitted marks, by slot, the replies that came without their
	// siblings (too large to send); omittedVV joins their vectors and
	// omittedLive is the most live siblings any of them reported. They
	// are never merged: a vector without the siblings it covers would
	// make a sync drop those siblings.
	omitted     []bool
	omittedVV   dvv.VV
	omittedLive int

	// replies and primaryReplies count every reply; found and primaryFound
	// only those that held the key.
	replies        int
	primaryReplies int
	found          int
	primaryFound   int
	// fallbackEmpty counts not-found replies from fallbacks: a fallback
	// holds only what was written while it stood in, so its empty answer
	// says little while a primary may still answer with the key.
	fallbackEmpty int

	decided bool
	err     *cairn.QuorumError // nil when decided for success
}

// NewReadTracker starts tracking a get sent to targets. A get that cannot
// succeed even before any reply (no targets, or fewer than R) is decided at
// once.
func NewReadTracker(targets []Target, spec Spec) *ReadTracker {
	t := &ReadTracker{spec: spec, tally: newTally(targets)}
	t.copies = make([]dvv.Object, len(t.tally.slots))
	t.omitted = make([]bool, len(t.tally.slots))
	t.decide(false)
	return t
}

// Reply records node's copy of the key; found is false when it holds
// nothing under the key, and obj is then ignored. The tracker keeps obj
// without copying it: the caller must not modify it afterwards.
func (t *ReadTracker) Reply(node string, obj dvv.Object, found bool) {
	i, ok := t.tally.settle(node, answered, "")
	if !ok {
		return
	}
	primary := t.tally.slots[i].target.Primary
	t.replies++
	if primary {
		t.primaryReplies++
	}
	if found {
		t.found++
		if primary {
			t.primaryFound++
		}
		t.copies[i] = obj
		t.merged = t.spec.Mode.Sync(t.merged, obj)
	} else if !primary {
		t.fallbackEmpty++
	}
	t.decide(false)
}

// ReplyOmitted records node's reply of a copy too large to send: its
// version vector vv and its count of live siblings, without the siblings.
// It counts toward R (and PR) as a reply that holds the key, but adds
// nothing to the merge and is never repaired (its copy is unknown): the
// get's answer can then carry only a context (see Omitted).
func (t *ReadTracker) ReplyOmitted(node string, vv dvv.VV, live int) {
	i, ok := t.tally.settle(node, answered, "")
	if !ok {
		return
	}
	t.omitted[i] = true
	t.omittedVV = t.omittedVV.Merge(vv)
	t.omittedLive = max(t.omittedLive, live)
	t.replies++
	t.found++
	if t.tally.slots[i].target.Primary {
		t.primaryReplies++
		t.primaryFound++
	}
	t.decide(false)
}

// Omitted reports whether a reply came without its siblings
// (ReplyOmitted), with the join of those replies' vectors and the most
// live siblings one of them reported. A get with such a reply can answer
// the context (the merge's vector joined with vv) but not the values.
func (t *ReadTracker) Omitted() (vv dvv.VV, live int, ok bool) {
	if !slices.Contains(t.omitted, true) {
		return nil, 0, false
	}
	return t.omittedVV.Clone(), t.omittedLive, true
}

// Add makes target one more target of the get, pending: a fallback that
// replaces a target that failed or stayed silent. Add it before recording
// the failure it answers (Fail), so that the get is not decided as
// impossible in between. A node that is already a target is not added
// again.
func (t *ReadTracker) Add(target Target) {
	if t.tally.add(target) {
		t.copies = append(t.copies, dvv.Object{})
		t.omitted = append(t.omitted, false)
		t.decide(false)
	}
}

// Fail records that node did not reply; reason is short ("timeout",
// "unreachable", an error's text) and shows in the error.
func (t *ReadTracker) Fail(node string, reason string) {
	if _, ok := t.tally.settle(node, failed, reason); ok {
		t.decide(false)
	}
}

// Timeout records that the deadline passed: every target still pending
// failed with "timeout". It decides the get if nothing had. A reply that
// arrives afterwards from a timed-out target is ignored, like any second
// answer.
func (t *ReadTracker) Timeout() {
	t.tally.timeout()
	t.decide(true)
}

// Done reports whether the get is decided: it succeeded, success became
// impossible, or the deadline passed.
func (t *ReadTracker) Done() bool { return t.decided }

// Err is nil once the get succeeded (found or not: see Result), and
// otherwise a *cairn.QuorumError. Before the get is decided it describes the
// first need not yet met, with the targets still waited for marked
// "pending", so that an early caller is never told of a success that has not
// happened.
func (t *ReadTracker) Err() error {
	if t.decided {
		if t.err == nil {
			return nil
		}
		return t.err
	}
	needs := t.needs()
	for _, n := range needs {
		if !n.met() {
			return t.quorumError(n, false)
		}
	}
	// Every count is met but the get waits for replies that hold the key
	// (NotFoundOK is off): report against the replies that did.
	if t.found < t.spec.R {
		return t.quorumError(need{kind: "r", need: t.spec.R, got: t.found}, false)
	}
	return t.quorumError(need{kind: "pr", need: t.spec.PR, got: t.primaryFound}, false)
}

// Result returns the merge (Spec.Mode's Sync) of every reply so far, late ones
// included, and the nodes that replied, in target order. A not-found reply
// adds nothing to the merge; the merge of only not-found replies is the
// empty object. The object returned is the caller's to keep.
func (t *ReadTracker) Result() (dvv.Object, []string) {
	var nodes []string
	for _, s := range t.tally.slots {
		if s.answer == answered {
			nodes = append(nodes, s.target.Node)
		}
	}
	merged := dvv.Object{Siblings: slices.Clone(t.merged.Siblings), VV: maps.Clone(t.merged.VV)}
	return merged, nodes
}

// Repairs returns the targets that replied with a copy that is missing or
// not equal to the merge of every reply, in target order: the ones read
// repair should send the merge to. Call it once every target answered or
// the deadline passed; before that, a later reply can still change the
// merge. Targets that failed or timed out are not included (their copy is
// unknown), and nothing needs repair when no reply held the key. Nor are
// replies that came without their siblings: their copy is unknown too.
func (t *ReadTracker) Repairs() []Target {
	if t.merged.Empty() {
		return nil
	}
	var repairs []Target
	for i, s := range t.tally.slots {
		if s.answer == answered && !t.omitted[i] && !t.copies[i].Equal(t.merged) {
			repairs = append(repairs, s.target)
		}
	}
	return repairs
}

func (t *ReadTracker) String() string {
	return fmt.Sprintf("replies=%d found=%d primary-replies=%d primary-found=%d pending=%s",
		t.replies, t.found, t.primaryReplies, t.primaryFound, t.tally.pendingNodes())
}

// needs counts every reply, not-found ones included: whether NotFoundOK or
// not, a get that cannot collect R replies of any kind can never succeed.
func (t *ReadTracker) needs() []need {
	return []need{
		{kind: "r", need: t.spec.R, got: t.replies, more: t.tally.pending},
		{kind: "pr", need: t.spec.PR, got: t.primaryReplies, more: t.tally.pendingPrimaries},
	}
}

// decide settles the outcome the first time the counts allow it and never
// again.
//
// Without NotFoundOK a not-found reply does not count toward R or PR while
// other targets might still hold the key; once no target is pending, the
// replies of every kind decide, so a key that really is missing reads as
// not found rather than as a quorum failure.
func (t *ReadTracker) decide(timedOut bool) {
	if t.decided {
		return
	}
	ok, failed := decide(t.needs())
	if failed != nil {
		t.decided = true
		t.err = t.quorumError(*failed, timedOut)
		return
	}
	if ok && t.fallbackEmpty > 0 && t.tally.pendingPrimaries > 0 {
		// Do not let fallbacks' empty answers make up R while a primary,
		// which may hold the key, has yet to answer; the deadline (or the
		// primary's failure) ends the wait.
		ok = t.replies-t.fallbackEmpty >= t.spec.R && t.primaryReplies >= t.spec.PR
	}
	if !t.spec.NotFoundOK {
		enoughFound := t.found >= t.spec.R && t.primaryFound >= t.spec.PR
		ok = enoughFound || (ok && t.tally.pending == 0)
	}
	t.decided = ok
}

func (t *ReadTracker) quorumError(n need, timedOut bool) *cairn.QuorumError {
	return &cairn.QuorumError{Op: "get", Kind: n.kind, Need: n.need, Got: n.got,
		Of: len(t.tally.slots), TimedOut: timedOut, Replicas: t.tally.outcomes()}
}
