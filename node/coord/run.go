package coord

import (
	"context"
	"sync"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/quorum"
)

// result is one target's answer to a call.
type result struct {
	node    string
	copy    Copy // a read's copy
	durable bool // a write's acknowledgement
	err     error
}

// flight is one request in flight: its state machine, what its calls
// carry, and how a call is started. The event handlers (onResult,
// onSilence, onDeadline) are all run does besides waiting and starting
// calls; tests call them directly, with a launch that records calls
// instead of starting them.
type flight struct {
	c    *Coordinator
	op   string
	req  *request
	key  Key
	obj  dvv.Object // what a write sends
	sync bool
	// self and selfDurable: a write's own copy is acknowledged when
	// selfDurable returns (the coordinator minted it before the calls).
	self        string
	selfDurable func() (bool, error)
	// launch starts a call to t; its result must come back through
	// onResult.
	launch func(t quorum.Target)

	// What run keeps to handle the request's events where they arrive.
	// mu guards req once the first calls are out.
	mu     sync.Mutex
	handed bool          // decided and answered: the events that remain finish it
	over   bool          // finished: answers that still come are dropped
	wake   chan struct{} // the answer that decides the request wakes its goroutine
	// queued are the calls an event handled under mu asked for; they
	// start once mu is released.
	queued   []quorum.Target
	start    time.Time
	deadline time.Time
	callCtx  context.Context
	cancel   context.CancelFunc
	timer    *time.Timer // wakes an answered request for its next silence or its deadline
}

// do makes one call of the request: a read of t's copy, or the write of
// the object to it.
func (f *flight) do(ctx context.Context, t quorum.Target) result {
	if f.req.read != nil {
		cp, err := f.c.replicas.Read(ctx, t, f.key)
		return result{node: t.Node, copy: cp, err: err}
	}
	if t.Node == f.self && f.selfDurable != nil {
		durable, err := f.selfDurable()
		return result{node: t.Node, durable: durable, err: err}
	}
	durable, err := f.c.replicas.Write(ctx, t, f.key, f.obj, f.sync)
	return result{node: t.Node, durable: durable, err: err}
}

func (f *flight) onResult(now time.Duration, res result) {
	fo, replaced := f.req.answer(now, res)
	if res.err != nil && res.node != f.c.cfg.Self {
		f.c.view.Failed(res.node, res.err)
	}
	if replaced {
		f.c.obs.Failover(f.op, fo.from, fo.to, Reason(fo.why))
		f.launch(fo.to)
	}
}

func (f *flight) onSilence(now time.Duration) {
	for _, fo := range f.req.silence(now) {
		f.c.view.Failed(fo.from.Node, ErrSilent)
		if fo.to.Node != "" {
			f.c.obs.Failover(f.op, fo.from, fo.to, Reason(fo.why))
			f.launch(fo.to)
		}
	}
}

func (f *flight) onDeadline() { f.req.expire() }

// run drives a request whose first calls are to targets: it answers once
// the request is decided, calling decided on this goroutine first, and
// leaves what remains (answers still to come, failovers of a write, read
// repair) to the goroutines those answers arrive on.
//
// Every event is handled under the request's lock, on the goroutine it
// arrives on: a call's answer where the call ends (deliver), a silence or
// the deadline on the goroutine waiting for the request or, once it is
// answered, on a timer's. The goroutine serving the request is woken only
// when the request is decided, or for a silence or the deadline: at W=2 a
// write's own fsync and its third replica wake nobody.
//
// Calls keep the request's deadline but not its cancellation once the
// request is decided: a client that hangs up after its acknowledgement
// does not stop the write reaching every replica. A request whose context
// ends before it is decided (its connection was lost, which the transport
// reports by cancelling it, or its deadline passed) is finished at that
// moment, and its calls end with it: nobody is left to answer, and what
// already landed stays, as with any write that fails.
func (c *Coordinator) run(ctx context.Context, f *flight, targets []quorum.Target, decided func()) error {
	f.start = time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = f.start.Add(c.cfg.RepairTimeout)
	}
	f.deadline = deadline
	f.callCtx, f.cancel = context.WithDeadline(c.lifetime, deadline)
	f.wake = make(chan struct{}, 1)
	f.launch = f.enqueue
	// This node's own copy is read here, after the other calls are on
	// their way: it costs no message, and no goroutine either.
	local := -1
	for i, t := range targets {
		if f.req.read != nil && t.Node == c.cfg.Self {
			local = i
			continue
		}
		f.call(t)
	}
	var own result
	if local >= 0 {
		own = f.do(f.callCtx, targets[local])
	}
	f.mu.Lock()
	if local >= 0 {
		f.handle(own)
	}
	f.waitDecided(ctx.Done())
	err := f.req.err()
	decided()
	f.handed = true
	f.settle()
	return err
}

// enqueue is the flight's launch. Events are handled under mu, and a
// call never starts under it (startQueued, settle): its answer may come
// back on the very goroutine that starts it.
func (f *flight) enqueue(t quorum.Target) { f.queued = append(f.queued, t) }

// call starts the call to t; its answer comes back through deliver.
func (f *flight) call(t quorum.Target) {
	c := f.c
	// A write to another node completes by callback when the replica set
	// offers it: no worker is woken to wait for the answer.
	if async, ok := c.replicas.(AsyncWriter); ok && f.req.read == nil && t.Node != c.cfg.Self {
		node := t.Node
		if async.WriteAsync(f.callCtx, t, f.key, f.obj, f.sync, func(durable bool, err error) {
			f.deliver(result{node: node, durable: durable, err: err})
		}) {
			return
		}
	}
	c.calls.Go(replicaCall{f: f, ctx: f.callCtx, target: t})
}

// startCalls starts calls, unless the coordinator is closing (its pools
// take nothing more then); it reports whether it did.
func (f *flight) startCalls(targets []quorum.Target) bool {
	if !f.c.admit() {
		return false
	}
	defer f.c.release()
	for _, t := range targets {
		f.call(t)
	}
	return true
}

// startQueued starts the calls queued under mu, which it releases
// meanwhile; a request whose calls cannot start ends as at its deadline.
func (f *flight) startQueued() {
	if len(f.queued) == 0 {
		return
	}
	queued := f.queued
	f.queued = nil
	f.mu.Unlock()
	started := f.startCalls(queued)
	f.mu.Lock()
	if !started {
		f.onDeadline()
	}
}

func (f *flight) elapsed() time.Duration { return time.Since(f.start) }

// waitDecided waits, with mu held on entry and on return, until the
// request is decided; it handles the silences and done, which ends the
// wait as the deadline does, and the answers are handled where they
// arrive (deliver), which wakes it when one decides the request.
func (f *flight) waitDecided(done <-chan struct{}) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			silenceTimers.Put(timer)
		}
	}()
	for {
		f.startQueued()
		if f.req.done() {
			return
		}
		var silence <-chan time.Time
		if at, ok := f.req.nextSilence(); ok {
			wait := at - f.elapsed()
			if wait <= 0 {
				f.onSilence(f.elapsed())
				continue
			}
			if timer == nil {
				timer = silenceTimers.Get().(*time.Timer)
			}
			timer.Reset(wait)
			silence = timer.C
		}
		f.mu.Unlock()
		select {
		case <-f.wake:
			f.mu.Lock()
		case <-silence:
			f.mu.Lock()
			f.onSilence(f.elapsed())
		case <-done:
			f.mu.Lock()
			f.onDeadline()
		}
	}
}

// handle takes one answer, under mu.
func (f *flight) handle(res result) {
	if f.pastDeadline() {
		// That decides, not the failures it caused in the calls, which
		// may arrive a moment before the request's own timer.
		f.onDeadline()
	}
	f.onResult(f.elapsed(), res)
}

// pastDeadline: the request's deadline passed, or the coordinator is
// closing, which ends its calls as the deadline would.
func (f *flight) pastDeadline() bool {
	return f.callCtx.Err() != nil || !time.Now().Before(f.deadline)
}

// finish marks the request finished, under mu: answers that still come
// are dropped, and its timer will not fire.
func (f *flight) finish() {
	f.over = true
	if f.timer != nil {
		f.timer.Stop()
	}
}

// deliver is how a call's answer comes back, from whatever goroutine made
// the call: it is handled there. Before the request is decided, the
// answer that decides it wakes the goroutine waiting for it; after, the
// answer that comes last finishes the request.
func (f *flight) deliver(res result) {
	f.mu.Lock()
	if f.over {
		f.mu.Unlock()
		return
	}
	f.handle(res)
	if f.handed {
		f.settle()
		return
	}
	f.startQueued()
	decided := f.req.done()
	f.mu.Unlock()
	if decided {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// onTimer is the answered request's next silence or its deadline.
func (f *flight) onTimer() {
	f.mu.Lock()
	if f.over {
		f.mu.Unlock()
		return
	}
	if f.pastDeadline() {
		f.onDeadline()
	} else {
		f.onSilence(f.elapsed())
	}
	f.settle()
}

// settle ends an event of an answered request, under mu, which it
// releases: a request that is finished is closed (its calls' context
// cancelled, a get's repair started), one that is not waits for its next
// silence or its deadline; then the calls the event asked for start.
func (f *flight) settle() {
	queued := f.queued
	f.queued = nil
	finished := f.req.finished()
	repair := false
	if finished {
		repair = f.needsRepair()
		f.finish()
	} else {
		next := f.deadline
		if at, ok := f.req.nextSilence(); ok && f.start.Add(at).Before(next) {
			next = f.start.Add(at)
		}
		// A timer that fires early, or a moment after it was moved,
		// finds nothing silent yet and is armed again.
		if f.timer == nil {
			f.timer = time.AfterFunc(time.Until(next), f.onTimer)
		} else {
			f.timer.Reset(time.Until(next))
		}
	}
	f.mu.Unlock()
	if !f.startCalls(queued) {
		// Closing: the request ends here, as at its deadline.
		f.mu.Lock()
		if !f.over {
			f.onDeadline()
			f.finish()
		}
		f.mu.Unlock()
		f.cancel()
		return
	}
	if !finished {
		return
	}
	if !repair || !f.c.admit() {
		f.cancel()
		return
	}
	defer f.c.release()
	f.c.background.Go(func() {
		defer f.cancel()
		f.repair()
	})
}

// silenceTimers recycles the timers that wake a request's loop when a
// target has been silent too long: every request arms one, and a new one
// per request was 6% of a node's allocations under a write load. A timer
// is stopped before it is put back, and since Go 1.23 a stopped timer's
// channel delivers nothing stale after a Reset, so the next request never
// sees the last one's silence.
var silenceTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// replicaCall is one call of a flight, for a worker to make.
type replicaCall struct {
	f      *flight
	ctx    context.Context
	target quorum.Target
}

func makeCall(c replicaCall) { c.f.deliver(c.f.do(c.ctx, c.target)) }

// needsRepair: a read whose answers already show a target to repair.
func (f *flight) needsRepair() bool {
	if f.req.read == nil || !f.c.cfg.ReadRepair {
		return false
	}
	repairs, _ := f.req.repairs()
	return len(repairs) > 0
}

// repair sends the merge of every answer of a finished get to each target
// whose copy was missing or behind it, in parallel, and waits for them.
// Replica writes sync, so a repair never overwrites a write that raced it.
func (f *flight) repair() {
	if f.req.read == nil || !f.c.cfg.ReadRepair {
		return
	}
	targets, merged := f.req.repairs()
	if len(targets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(f.c.lifetime, f.c.cfg.RepairTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.c.replicas.Write(ctx, t, f.key, merged, false)
			f.c.obs.ReadRepaired(t, err)
		}()
	}
	wg.Wait()
}
