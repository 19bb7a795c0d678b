package coord

import (
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/quorum"
)

// request decides one get, put or delete from its targets' answers: which
// targets have been asked, which answered, which failed or went silent and
// which fallback stands in for them. Time is an input (the time elapsed
// since the request started), never read; nothing here waits or does I/O.
//
// A target that fails, or stays silent for silentAfter, is replaced by the
// next fallback of the route, in ring order, that is up and not yet asked.
// The replacement stands in for the same primary (its hint names it). A
// silent target stays pending next to its replacement: if it answers after
// all, both count. A failure is recorded after its replacement was added to
// the tracker, so that the request is never decided impossible in between.
//
// Writes go on replacing failed targets after they are decided, until every
// target answered or the deadline passed, so that a write a client was told
// succeeded still reaches N nodes. Reads replace only while undecided: once
// answered, late answers serve read repair alone.
type request struct {
	sloppy    bool
	up        func(string) bool
	fallbacks []string
	// spares are targets not asked at first (a get asks only as many as
	// it needs): the first to take the place of a target that fails or
	// stays silent, before any fallback, sloppy or not.
	spares      []quorum.Target
	silentAfter time.Duration

	calls   []call
	write   *quorum.WriteTracker // exactly one of write and read is set
	read    *quorum.ReadTracker
	expired bool // the deadline passed
}

// call is one target asked.
type call struct {
	target   quorum.Target
	sentAt   time.Duration
	answered bool
	// silent is set once the target was reported silent (and, when a
	// fallback was left, replaced); replaced once a fallback stands in.
	silent   bool
	replaced bool
}

// failover is a target given up on (failed, or silent) and the fallback
// asked in its place; to is the zero Target when none was left.
type failover struct {
	from, to quorum.Target
	why      error
}

func newWriteRequest(op string, spec quorum.Spec, targets []quorum.Target, route Route, up func(string) bool, silentAfter time.Duration) *request {
	r := newRequest(targets, route, up, silentAfter)
	r.write = quorum.NewWriteTracker(op, targets, spec)
	return r
}

// newReadRequest asks targets; spares stand by for those that fail.
func newReadRequest(spec quorum.Spec, targets, spares []quorum.Target, route Route, up func(string) bool, silentAfter time.Duration) *request {
	r := newRequest(targets, route, up, silentAfter)
	r.spares = spares
	r.read = quorum.NewReadTracker(targets, spec)
	return r
}

func newRequest(targets []quorum.Target, route Route, up func(string) bool, silentAfter time.Duration) *request {
	r := &request{sloppy: route.Sloppy, up: up, fallbacks: route.Fallbacks, silentAfter: silentAfter,
		calls: make([]call, 0, len(targets)+len(route.Fallbacks))}
	for _, t := range targets {
		r.calls = append(r.calls, call{target: t})
	}
	return r
}

// answer records one target's answer. A failure may bring in a fallback:
// the failover is returned so that the caller asks it.
func (r *request) answer(now time.Duration, res result) (failover, bool) {
	i := r.find(res.node)
	if i < 0 || r.calls[i].answered {
		return failover{}, false
	}
	r.calls[i].answered = true
	if res.err == nil {
		if r.write != nil {
			r.write.Ack(res.node, res.durable)
		} else if res.copy.Omitted {
			r.read.ReplyOmitted(res.node, res.copy.Object.VV, res.copy.Live)
		} else {
			r.read.Reply(res.node, res.copy.Object, res.copy.Found)
		}
		return failover{}, false
	}
	f := failover{from: r.calls[i].target, why: res.err}
	var ok bool
	if !r.calls[i].replaced && r.mayFailOver() {
		f.to, ok = r.replace(now, i)
	}
	r.tracker().Fail(res.node, Reason(res.err))
	return f, ok
}

// silence reports the targets asked at least silentAfter ago that have not
// answered, each once, with the fallback brought in for it when one is
// left.
func (r *request) silence(now time.Duration) []failover {
	if !r.mayFailOver() {
		return nil
	}
	var out []failover
	for i := range r.calls {
		c := &r.calls[i]
		if c.answered || c.silent || now-c.sentAt < r.silentAfter {
			continue
		}
		c.silent = true
		f := failover{from: c.target, why: ErrSilent}
		f.to, _ = r.replace(now, i)
		out = append(out, f)
	}
	return out
}

// nextSilence is when the next target still waited for becomes silent,
// or false when no silence can change anything any more.
func (r *request) nextSilence() (time.Duration, bool) {
	if !r.mayFailOver() {
		return 0, false
	}
	var next time.Duration
	found := false
	for _, c := range r.calls {
		if c.answered || c.silent {
			continue
		}
		if at := c.sentAt + r.silentAfter; !found || at < next {
			next, found = at, true
		}
	}
	return next, found
}

// mayFailOver: something may stand in (a spare, or a fallback when
// sloppy), there is time left, and the answers still matter (a read that
// is decided only listens).
func (r *request) mayFailOver() bool {
	return (r.sloppy || len(r.spares) > 0) && !r.expired && (r.write != nil || !r.read.Done())
}

// replace brings in, for call i, the next spare, or else (sloppy) the next
// fallback that is up and not yet asked, and marks i replaced.
func (r *request) replace(now time.Duration, i int) (quorum.Target, bool) {
	if len(r.spares) > 0 {
		t := r.spares[0]
		r.spares = r.spares[1:]
		r.calls[i].replaced = true
		r.calls = append(r.calls, call{target: t, sentAt: now})
		r.tracker().Add(t)
		return t, true
	}
	if !r.sloppy {
		return quorum.Target{}, false
	}
	for _, f := range r.fallbacks {
		if r.find(f) >= 0 || !r.up(f) {
			continue
		}
		from := r.calls[i].target
		t := quorum.Target{Node: f, Primary: false, For: from.For}
		if from.Primary {
			t.For = from.Node
		}
		r.calls[i].replaced = true
		r.calls = append(r.calls, call{target: t, sentAt: now})
		r.tracker().Add(t)
		return t, true
	}
	return quorum.Target{}, false
}

// expire records that the deadline passed: everything still pending
// failed with a timeout.
func (r *request) expire() {
	r.expired = true
	r.tracker().Timeout()
}

// finished: nothing more can happen, every target answered or the deadline
// passed.
func (r *request) finished() bool {
	if r.expired {
		return true
	}
	for _, c := range r.calls {
		if !c.answered {
			return false
		}
	}
	return true
}

func (r *request) done() bool { return r.tracker().Done() }
func (r *request) err() error { return r.tracker().Err() }

// repairs are the targets whose copy is missing or behind the merge of
// every answer, and that merge: what read repair sends. Ask once the
// request is finished.
func (r *request) repairs() ([]quorum.Target, dvv.Object) {
	merged, _ := r.read.Result()
	return r.read.Repairs(), merged
}

func (r *request) find(node string) int {
	for i := range r.calls {
		if r.calls[i].target.Node == node {
			return i
		}
	}
	return -1
}

type tracker interface {
	Add(quorum.Target)
	Fail(node, reason string)
	Timeout()
	Done() bool
	Err() error
}

func (r *request) tracker() tracker {
	if r.write != nil {
		return r.write
	}
	return r.read
}
