package quorum

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"pgregory.net/rapid"
)

// The property tests drive the trackers with random event sequences and
// check each step against a model that recounts everything from the log of
// first answers. The trackers count incrementally; the model does not, so a
// counting slip (a double-counted duplicate, a stranger's ack, a pending
// count off by one) shows up as a disagreement.

var nodePool = []string{"n1", "n2", "n3", "n4", "n5", "n6"}

// drawTargets draws up to five targets, now and then naming a node twice
// (the trackers must count it once).
func drawTargets(t *rapid.T) []Target {
	k := rapid.IntRange(0, 5).Draw(t, "targets")
	targets := make([]Target, k)
	for i := range targets {
		node := nodePool[i]
		if i > 0 && rapid.IntRange(0, 9).Draw(t, fmt.Sprintf("dup%d", i)) == 0 {
			node = targets[rapid.IntRange(0, i-1).Draw(t, fmt.Sprintf("dupof%d", i))].Node
		}
		targets[i] = Target{Node: node, Primary: rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("role%d", i)) > 0}
	}
	return targets
}

// drawNode picks the node of the next event: mostly a target, so that
// targets answer twice and requests get decided, sometimes a node that is
// not a target.
func drawNode(t *rapid.T, targets []Target) string {
	if len(targets) > 0 && rapid.IntRange(0, 9).Draw(t, "to-target") < 8 {
		return rapid.SampledFrom(targets).Draw(t, "target").Node
	}
	return rapid.SampledFrom(append(slices.Clone(nodePool), "stranger")).Draw(t, "node")
}

// model is the dumb version of a tracker: the first answer of each distinct
// target, and counts recomputed from scratch.
type model struct {
	targets []Target // distinct, first occurrence wins
	answers map[string]modelAnswer
}

type modelAnswer struct {
	ok      bool // acked or replied
	durable bool // writes: fsynced
	found   bool // reads: held the key
	obj     dvv.Object
}

func newModel(targets []Target) *model {
	m := &model{answers: map[string]modelAnswer{}}
	for _, tg := range targets {
		if !slices.ContainsFunc(m.targets, func(o Target) bool { return o.Node == tg.Node }) {
			m.targets = append(m.targets, tg)
		}
	}
	return m
}

func (m *model) isTarget(node string) bool {
	return slices.ContainsFunc(m.targets, func(t Target) bool { return t.Node == node })
}

func (m *model) record(node string, a modelAnswer) {
	if _, done := m.answers[node]; done || !m.isTarget(node) {
		return
	}
	m.answers[node] = a
}

func (m *model) timeout() {
	for _, tg := range m.targets {
		m.record(tg.Node, modelAnswer{})
	}
}

type counts struct {
	ok, okPrimary, durable, found, foundPrimary, pending, pendingPrimary int
	// fallbackEmpty: fallbacks that answered without the key.
	fallbackEmpty int
}

func (m *model) counts() counts {
	var c counts
	for _, tg := range m.targets {
		a, answered := m.answers[tg.Node]
		switch {
		case !answered:
			c.pending++
			if tg.Primary {
				c.pendingPrimary++
			}
		case a.ok:
			c.ok++
			if tg.Primary {
				c.okPrimary++
			}
			if a.durable {
				c.durable++
			}
			if a.found {
				c.found++
				if tg.Primary {
					c.foundPrimary++
				}
			} else if !tg.Primary {
				c.fallbackEmpty++
			}
		}
	}
	return c
}

// decision is a tracker's answer, frozen for comparison with later ones.
type decision struct {
	done bool
	err  error
}

func checkStable(t *rapid.T, before, now decision) {
	if before.done && (!now.done || before.err != now.err) {
		t.Fatalf("decision changed from (done %t, %v) to (done %t, %v)", before.done, before.err, now.done, now.err)
	}
}

// checkFailure checks the facts a decided failure carries.
func checkFailure(t *rapid.T, err error, m *model, kind string, need, got int, timedOut bool) {
	var qe *cairn.QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, cairn.ErrQuorum) {
		t.Fatalf("failure %v is not a *cairn.QuorumError", err)
	}
	if qe.Kind != kind || qe.Need != need || qe.Got != got || qe.Of != len(m.targets) || qe.TimedOut != timedOut {
		t.Fatalf("got %+v, want kind=%s need=%d got=%d of=%d timedOut=%t", qe, kind, need, got, len(m.targets), timedOut)
	}
	if errors.Is(err, cairn.ErrTimeout) != timedOut {
		t.Fatalf("errors.Is(%v, ErrTimeout) = %t, want %t", err, !timedOut, timedOut)
	}
	if len(qe.Replicas) != len(m.targets) {
		t.Fatalf("%d replica outcomes for %d targets", len(qe.Replicas), len(m.targets))
	}
	for i, r := range qe.Replicas {
		tg := m.targets[i]
		a, answered := m.answers[tg.Node]
		if r.Node != tg.Node || r.Primary != tg.Primary || r.OK != (answered && a.ok) || (r.Err == "") != r.OK {
			t.Fatalf("outcome %d is %+v for target %+v answered=%t %+v", i, r, tg, answered, a)
		}
		if !answered && r.Err != "pending" {
			t.Fatalf("outcome %d is %+v for a target still pending", i, r)
		}
	}
}

func TestWriteTrackerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		targets := drawTargets(t)
		n := rapid.IntRange(max(1, len(targets)), 5).Draw(t, "n")
		spec := Spec{
			N:  n,
			W:  rapid.IntRange(1, n).Draw(t, "w"),
			PW: rapid.IntRange(0, n).Draw(t, "pw"),
			DW: rapid.IntRange(0, n).Draw(t, "dw"),
		}
		w := NewWriteTracker("put", targets, spec)
		m := newModel(targets)
		var prev decision
		for step := range rapid.IntRange(0, 12).Draw(t, "steps") + 1 {
			timedOut := false
			if step > 0 {
				node := drawNode(t, targets)
				switch rapid.SampledFrom([]string{"ack", "ack", "fail", "timeout"}).Draw(t, "event") {
				case "ack":
					durable := rapid.Bool().Draw(t, "durable")
					w.Ack(node, durable)
					m.record(node, modelAnswer{ok: true, durable: durable})
				case "fail":
					w.Fail(node, "unreachable")
					m.record(node, modelAnswer{})
				case "timeout":
					w.Timeout()
					m.timeout()
					timedOut = true
				}
			}
			now := decision{w.Done(), w.Err()}
			checkStable(t, prev, now)
			if !now.done && now.err == nil {
				t.Fatalf("undecided write reports success")
			}
			if prev.done {
				continue
			}
			c := m.counts()
			met := c.ok >= spec.W && c.okPrimary >= spec.PW && c.durable >= spec.DW
			var kind string
			var need, got int
			switch {
			case c.ok+c.pending < spec.W:
				kind, need, got = "w", spec.W, c.ok
			case c.okPrimary+c.pendingPrimary < spec.PW:
				kind, need, got = "pw", spec.PW, c.okPrimary
			case c.durable+c.pending < spec.DW:
				kind, need, got = "dw", spec.DW, c.durable
			}
			switch {
			case met:
				if !now.done || now.err != nil {
					t.Fatalf("counts %+v meet %+v but the tracker says done=%t err=%v", c, spec, now.done, now.err)
				}
			case kind != "":
				if !now.done {
					t.Fatalf("counts %+v can no longer meet %+v but the tracker waits", c, spec)
				}
				checkFailure(t, now.err, m, kind, need, got, timedOut)
			case now.done:
				t.Fatalf("counts %+v neither meet nor rule out %+v but the tracker decided %v", c, spec, now.err)
			}
			prev = now
		}
	})
}

// drawObject draws a copy of a key as replicas might hold it: a few writes
// by a few actors, each with or without the context of the one before, so
// that copies overlap, supersede each other or hold concurrent siblings.
func drawObject(t *rapid.T, label string) dvv.Object {
	var obj dvv.Object
	for i := range rapid.IntRange(1, 3).Draw(t, label+"-writes") {
		var ctx dvv.VV
		if rapid.Bool().Draw(t, fmt.Sprintf("%s-ctx%d", label, i)) {
			ctx = obj.VV
		}
		actor := rapid.SampledFrom([]string{"a", "b"}).Draw(t, fmt.Sprintf("%s-actor%d", label, i))
		obj = mustUpdate(obj.Update(ctx, actor, []byte(label), false, 0))
	}
	return obj
}

func TestReadTrackerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		targets := drawTargets(t)
		n := rapid.IntRange(max(1, len(targets)), 5).Draw(t, "n")
		spec := Spec{
			N:          n,
			R:          rapid.IntRange(1, n).Draw(t, "r"),
			PR:         rapid.IntRange(0, n).Draw(t, "pr"),
			NotFoundOK: rapid.Bool().Draw(t, "notfound_ok"),
		}
		r := NewReadTracker(targets, spec)
		m := newModel(targets)
		var prev decision
		for step := range rapid.IntRange(0, 12).Draw(t, "steps") + 1 {
			timedOut := false
			if step > 0 {
				node := drawNode(t, targets)
				switch rapid.SampledFrom([]string{"reply", "reply", "fail", "timeout"}).Draw(t, "event") {
				case "reply":
					var obj dvv.Object
					found := rapid.Bool().Draw(t, "found")
					if found {
						obj = drawObject(t, node)
					}
					r.Reply(node, obj, found)
					m.record(node, modelAnswer{ok: true, found: found, obj: obj})
				case "fail":
					r.Fail(node, "unreachable")
					m.record(node, modelAnswer{})
				case "timeout":
					r.Timeout()
					m.timeout()
					timedOut = true
				}
			}
			checkMerge(t, r, m)
			now := decision{r.Done(), r.Err()}
			checkStable(t, prev, now)
			if !now.done && now.err == nil {
				t.Fatalf("undecided read reports success")
			}
			if prev.done {
				continue
			}
			c := m.counts()
			var met bool
			if spec.NotFoundOK {
				// A fallback's empty answer counts only once no primary
				// is pending: the primary may hold the key.
				counted := c.ok
				if c.pendingPrimary > 0 {
					counted -= c.fallbackEmpty
				}
				met = counted >= spec.R && c.okPrimary >= spec.PR
			} else {
				met = (c.found >= spec.R && c.foundPrimary >= spec.PR) ||
					(c.pending == 0 && c.ok >= spec.R && c.okPrimary >= spec.PR)
			}
			var kind string
			var need, got int
			switch {
			case c.ok+c.pending < spec.R:
				kind, need, got = "r", spec.R, c.ok
			case c.okPrimary+c.pendingPrimary < spec.PR:
				kind, need, got = "pr", spec.PR, c.okPrimary
			}
			switch {
			case met:
				if !now.done || now.err != nil {
					t.Fatalf("counts %+v meet %+v but the tracker says done=%t err=%v", c, spec, now.done, now.err)
				}
			case kind != "":
				if !now.done {
					t.Fatalf("counts %+v can no longer meet %+v but the tracker waits", c, spec)
				}
				checkFailure(t, now.err, m, kind, need, got, timedOut)
			case now.done:
				t.Fatalf("counts %+v neither meet nor rule out %+v but the tracker decided %v", c, spec, now.err)
			}
			prev = now
		}
	})
}

// checkMerge checks Result and Repairs against the model's replies: the
// merge is the Sync of every copy found (in any order: Sync commutes), the
// nodes are those that replied, in target order, and a replica needs repair
// exactly when its copy differs from a non-empty merge.
func checkMerge(t *rapid.T, r *ReadTracker, m *model) {
	want := dvv.Object{}
	var replied []string
	for i := len(m.targets) - 1; i >= 0; i-- { // the reverse of the tracker's order
		if a, ok := m.answers[m.targets[i].Node]; ok && a.found {
			want = dvv.Sync(want, a.obj)
		}
	}
	for _, tg := range m.targets {
		if a, ok := m.answers[tg.Node]; ok && a.ok {
			replied = append(replied, tg.Node)
		}
	}
	got, nodes := r.Result()
	if !got.Equal(want) {
		t.Fatalf("merge %+v, want %+v", got, want)
	}
	if !slices.Equal(nodes, replied) {
		t.Fatalf("replied %v, want %v", nodes, replied)
	}
	var repairs []Target
	if !want.Empty() {
		for _, tg := range m.targets {
			if a, ok := m.answers[tg.Node]; ok && a.ok && !a.obj.Equal(want) {
				repairs = append(repairs, tg)
			}
		}
	}
	if got := r.Repairs(); !slices.Equal(got, repairs) {
		t.Fatalf("repairs %v, want %v", got, repairs)
	}
	// Result hands out a copy: changing it must not change the tracker.
	if len(got.VV) > 0 {
		for a := range got.VV {
			got.VV[a] += 100
		}
		if again, _ := r.Result(); !again.Equal(want) {
			t.Fatalf("changing Result's object changed the tracker's merge")
		}
	}
}

// mustUpdate takes dvv's Update in a history whose counters cannot come
// near the end of their range, so an error is a bug in the test.
func mustUpdate(o dvv.Object, err error) dvv.Object {
	if err != nil {
		panic(err)
	}
	return o
}
