package quorum

import (
	"strings"

	"github.com/cairnkv/cairn"
)

// answer is where one target stands.
type answer uint8

const (
	pending answer = iota
	answered
	failed
)

// slot is one target and what it has done so far.
type slot struct {
	target Target
	answer answer
	reason string // why it failed; empty unless failed
}

// tally records the first answer of each target, which both trackers count
// from. Every target answers at most once: a second event for the same node,
// or an event for a node that is not a target, changes nothing, so a
// replica that answers twice can never be counted twice.
//
// Slots are found by a linear scan: a request has a handful of targets (N),
// and a scan of three to five strings is cheaper than building a map for
// every request.
type tally struct {
	slots            []slot
	pending          int
	pendingPrimaries int
}

// newTally keeps the first target of each node: a node listed twice counts
// once.
func newTally(targets []Target) tally {
	t := tally{slots: make([]slot, 0, len(targets))}
	for _, tg := range targets {
		t.add(tg)
	}
	return t
}

// add makes t one more target, pending; it returns false, and changes
// nothing, when t's node is already a target.
func (t *tally) add(tg Target) bool {
	if t.find(tg.Node) >= 0 {
		return false
	}
	t.slots = append(t.slots, slot{target: tg})
	t.pending++
	if tg.Primary {
		t.pendingPrimaries++
	}
	return true
}

// find returns node's slot, or -1 when node is not a target.
func (t *tally) find(node string) int {
	for i := range t.slots {
		if t.slots[i].target.Node == node {
			return i
		}
	}
	return -1
}

// settle records a target's answer and returns its slot, or false when the
// node is not a target or has already answered.
func (t *tally) settle(node string, a answer, reason string) (int, bool) {
	i := t.find(node)
	if i < 0 || t.slots[i].answer != pending {
		return 0, false
	}
	if a == failed && reason == "" {
		reason = "failed" // an empty reason would print as "n2: "
	}
	t.slots[i].answer = a
	t.slots[i].reason = reason
	t.pending--
	if t.slots[i].target.Primary {
		t.pendingPrimaries--
	}
	return i, true
}

// timeout fails every target still pending.
func (t *tally) timeout() {
	for i := range t.slots {
		if t.slots[i].answer == pending {
			t.slots[i].answer = failed
			t.slots[i].reason = "timeout"
		}
	}
	t.pending, t.pendingPrimaries = 0, 0
}

// outcomes reports what each target did, in target order; those still
// pending when the request was decided say so.
func (t *tally) outcomes() []cairn.ReplicaOutcome {
	out := make([]cairn.ReplicaOutcome, len(t.slots))
	for i, s := range t.slots {
		o := cairn.ReplicaOutcome{Node: s.target.Node, Primary: s.target.Primary}
		switch s.answer {
		case answered:
			o.OK = true
		case failed:
			o.Err = s.reason
		default:
			o.Err = "pending"
		}
		out[i] = o
	}
	return out
}

// pendingNodes lists the targets still pending, for String.
func (t *tally) pendingNodes() string {
	var names []string
	for _, s := range t.slots {
		if s.answer == pending {
			names = append(names, s.target.Node)
		}
	}
	return "[" + strings.Join(names, " ") + "]"
}

// need is one constraint of a request: at least need of some count.
type need struct {
	kind string // w, pw, dw, r, pr
	need int
	got  int
	// more is how many pending targets could still add to got.
	more int
}

func (n need) met() bool      { return n.got >= n.need }
func (n need) possible() bool { return n.got+n.more >= n.need }

// decide returns whether the constraints are all met, or else the first
// that can no longer be met (ok false, failed non-nil), or neither.
func decide(needs []need) (ok bool, failed *need) {
	for i := range needs {
		if !needs[i].possible() {
			return false, &needs[i]
		}
	}
	for _, n := range needs {
		if !n.met() {
			return false, nil
		}
	}
	return true, nil
}
