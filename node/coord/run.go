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
// onSilence, onDeadline) are all the loop does besides waiting; tests call
// them directly, with a launch that records calls instead of starting
// them.
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
// the request is decided, calling decided on this goroutine first (the
// request's state belongs to the background from then on), and hands what
// remains (answers still to come, failovers of a write, read repair) to a
// goroutine of the coordinator.
//
// Calls keep the request's deadline but not its cancellation once the
// request is decided: a client that hangs up after its acknowledgement
// does not stop the write reaching every replica. A request whose context
// ends before it is decided (its connection was lost, which the transport
// reports by cancelling it, or its deadline passed) is finished at that
// moment, and its calls end with it: nobody is left to answer, and what
// already landed stays, as with any write that fails.
func (c *Coordinator) run(ctx context.Context, f *flight, targets []quorum.Target, decided func()) error {
	start := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(c.cfg.RepairTimeout)
	}
	callCtx, cancel := context.WithDeadline(c.lifetime, deadline)
	// Every node is called at most once per request, so the channel never
	// fills: a call never waits for the loop, even after it stopped
	// listening.
	results := make(chan result, len(f.req.calls)+len(f.req.fallbacks)+len(f.req.spares))
	async, _ := c.replicas.(AsyncWriter)
	f.launch = func(t quorum.Target) {
		// A write to another node completes by callback when the replica
		// set offers it: no worker is woken to wait for the answer.
		if async != nil && f.req.read == nil && t.Node != c.cfg.Self {
			node := t.Node
			if async.WriteAsync(callCtx, t, f.key, f.obj, f.sync, func(durable bool, err error) {
				results <- result{node: node, durable: durable, err: err}
			}) {
				return
			}
		}
		c.calls.Go(replicaCall{f: f, ctx: callCtx, target: t, out: results})
	}
	// This node's own copy is read here, after the other calls are on
	// their way: it costs no message, and no goroutine either.
	local := -1
	for i, t := range targets {
		if f.req.read != nil && t.Node == c.cfg.Self {
			local = i
			continue
		}
		f.launch(t)
	}
	elapsed := func() time.Duration { return time.Since(start) }
	if local >= 0 {
		f.onResult(elapsed(), f.do(callCtx, targets[local]))
	}
	loop := func(done <-chan struct{}, until func() bool) {
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
				silenceTimers.Put(timer)
			}
		}()
		for !until() {
			var silence <-chan time.Time
			if at, ok := f.req.nextSilence(); ok {
				wait := at - elapsed()
				if wait <= 0 {
					f.onSilence(elapsed())
					continue
				}
				if timer == nil {
					timer = silenceTimers.Get().(*time.Timer)
				}
				timer.Reset(wait)
				silence = timer.C
			}
			select {
			case res := <-results:
				if !time.Now().Before(deadline) {
					// The deadline passed: it decides, not the failures
					// it caused in the calls that share it, which may
					// arrive a moment before the request's own timer.
					f.onDeadline()
				}
				f.onResult(elapsed(), res)
			case <-silence:
				f.onSilence(elapsed())
			case <-done:
				f.onDeadline()
			}
		}
	}
	loop(ctx.Done(), f.req.done)
	err := f.req.err()
	decided()
	if f.req.finished() && !f.needsRepair() {
		cancel()
		return err
	}
	c.background.Go(func() {
		defer cancel()
		loop(callCtx.Done(), f.req.finished)
		f.repair()
	})
	return err
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
	out    chan<- result
}

func makeCall(c replicaCall) { c.out <- c.f.do(c.ctx, c.target) }

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
