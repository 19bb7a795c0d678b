package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/client"
)

// Run loads the records (when cfg.Load) and runs the workload against kv,
// and returns what it measured. Requests that fail are counted, never
// fatal: Run returns an error only for a configuration it cannot run. When
// ctx is cancelled it stops early and returns what it has, with Aborted
// set.
func Run(ctx context.Context, kv KV, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, kv: kv, contexts: newContexts()}
	res := &Result{Config: cfg.settings(), Start: time.Now()}
	existing := uint64(cfg.Records)
	if cfg.Load {
		existing = 0
	}
	r.keys = newKeyspace(existing)
	// Random bytes, so that storage compression does not flatter the
	// numbers; every value is a window of them, shared by the workers.
	r.values = make([]byte, 2*cfg.ValueSize)
	vr := rand.New(rand.NewPCG(cfg.Seed, 0))
	for i := range r.values {
		r.values[i] = byte(vr.Uint32())
	}
	r.chooser = newChooser(cfg.Distribution, uint64(cfg.Records))

	if !cfg.Load && cfg.Mix[Update] > 0 {
		// Keys already there were written by someone else: without their
		// contexts every first update of a key would add a sibling beside
		// the old value instead of replacing it, and the run would measure
		// objects that grow. Read each key once first, unmeasured.
		var stalled bool
		res.Primed, stalled = r.prime(ctx)
		if stalled {
			res.Aborted = fmt.Sprintf("no read succeeded for %v while reading the keys' contexts: is the cluster up?", cfg.GiveUpAfter)
			res.End = time.Now()
			return res, nil
		}
		if ctx.Err() != nil {
			res.Aborted = "interrupted while reading the keys' contexts"
			res.End = time.Now()
			return res, nil
		}
	}
	if cfg.Load {
		load := &phase{
			name:  "load",
			mix:   Mix{Insert: 1},
			limit: int64(cfg.Records),
		}
		res.Load = r.runPhase(ctx, load)
		if load.stalled.Load() {
			res.Aborted = fmt.Sprintf("no request succeeded for %v during the load: is the cluster up?", cfg.GiveUpAfter)
			res.End = time.Now()
			return res, nil
		}
		if ctx.Err() != nil {
			res.Aborted = "interrupted during the load"
			res.End = time.Now()
			return res, nil
		}
	}
	run := &phase{
		name:     "run",
		mix:      cfg.Mix,
		limit:    cfg.Ops,
		duration: cfg.Duration,
		warmup:   cfg.Warmup,
		rate:     cfg.Rate,
		meter:    cfg.Meter,
	}
	res.Run = r.runPhase(ctx, run)
	if res.Run.Cost == nil {
		res.Run.Cost = &Cost{Unavailable: "not measured: no meter of the nodes' counters was given"}
	}
	switch {
	case run.stalled.Load():
		res.Aborted = fmt.Sprintf("no request succeeded for %v: is the cluster up?", cfg.GiveUpAfter)
	case ctx.Err() != nil:
		res.Aborted = "interrupted"
	}
	res.End = time.Now()
	return res, nil
}

// prime reads every existing key once, Concurrency at a time, and keeps
// each context; it returns how many keys it read.
func (r *runner) prime(ctx context.Context) (read int64, stalled bool) {
	var next, done atomic.Int64
	var lastOK atomic.Int64
	lastOK.Store(time.Now().UnixNano())
	var gaveUp atomic.Bool
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			var key []byte
			for n := next.Add(1) - 1; n < int64(r.cfg.Records) && ctx.Err() == nil && !gaveUp.Load(); n = next.Add(1) - 1 {
				key = keyName(key, uint64(n))
				gctx, cancel := context.WithTimeout(ctx, max(r.cfg.RequestTimeout, 10*time.Second))
				obj, err := r.kv.Get(gctx, r.cfg.Bucket, key, r.cfg.ReadOptions...)
				cancel()
				now := time.Now()
				if err == nil {
					r.contexts.set(uint64(n), obj.Context)
					done.Add(1)
					lastOK.Store(now.UnixNano())
				} else if r.cfg.GiveUpAfter > 0 && now.Sub(time.Unix(0, lastOK.Load())) >= r.cfg.GiveUpAfter {
					gaveUp.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return done.Load(), gaveUp.Load()
}

type runner struct {
	cfg      Config
	kv       KV
	keys     *keyspace
	contexts *contexts
	chooser  chooser // the template each worker copies
	values   []byte
}

// phase is one stretch of work by all the workers.
type phase struct {
	name     string
	mix      Mix
	limit    int64         // requests to send; 0: no limit
	duration time.Duration // measured time; 0: no limit
	warmup   time.Duration
	rate     float64 // 0: closed loop
	meter    Meter   // reads the nodes' counters for the phase's cost; nil: none

	// Set when the phase starts.
	ops         []Op
	start       time.Time
	measureFrom time.Time // start + warmup
	end         time.Time // zero: no time limit
	sent        atomic.Int64
	backlog     atomic.Int64
	lastOK      atomic.Int64 // UnixNano of the latest success, or of the start
	stalled     atomic.Bool  // the phase gave up: nothing succeeded for GiveUpAfter
}

func (r *runner) runPhase(ctx context.Context, p *phase) *PhaseResult {
	p.ops = p.mix.Ops()
	var probe *costProbe
	if p.meter != nil && p.warmup == 0 {
		// Before the workers start: the first request is measured.
		probe = startCostProbe(ctx, p.meter, time.Now())
	}
	p.start = time.Now()
	p.measureFrom = p.start.Add(p.warmup)
	if p.meter != nil && p.warmup > 0 {
		probe = startCostProbe(ctx, p.meter, p.measureFrom)
	}
	if p.duration > 0 {
		p.end = p.measureFrom.Add(p.duration)
	}
	col := newCollector(p.ops, min(r.cfg.Concurrency, maxRecorders))

	stop := make(chan struct{})
	reported := make(chan []Point, 1)
	go func() { reported <- r.report(p, col, stop) }()

	p.lastOK.Store(p.start.UnixNano())
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	watched := make(chan struct{})
	if r.cfg.GiveUpAfter > 0 {
		wg.Go(func() { r.watch(pctx, p, cancel, watched) })
	}
	var workers sync.WaitGroup
	for i := range r.cfg.Concurrency {
		w := r.newWorker(i, col.recs[i%len(col.recs)])
		workers.Go(func() { r.work(pctx, p, w) })
	}
	workers.Wait()
	close(watched)
	wg.Wait()
	finished := time.Now()
	close(stop)
	series := <-reported

	secs := max(finished.Sub(p.measureFrom).Seconds(), 0)
	res := &PhaseResult{
		Start:   p.measureFrom,
		End:     finished,
		Seconds: secs,
		Ops:     map[string]*OpResult{},
		Backlog: p.backlog.Load(),
		Series:  series,
	}
	if res.Series == nil {
		res.Series = []Point{}
	}
	for _, op := range p.ops {
		o := opResult(col.total[op], secs)
		res.Ops[op.String()] = o
		res.Requests += o.Requests
		res.OK += o.OK
		res.Errors += o.Requests - o.OK
	}
	if secs > 0 {
		res.OpsPerSec = float64(res.OK) / secs
	}
	if probe != nil {
		res.Cost = probe.finish(ctx, res.Requests)
	}
	return res
}

// watch gives the phase up (cancels it and marks it stalled) when no
// request has succeeded for GiveUpAfter, until done is closed.
func (r *runner) watch(ctx context.Context, p *phase, cancel context.CancelFunc, done <-chan struct{}) {
	tick := time.NewTicker(min(time.Second, r.cfg.GiveUpAfter/4))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(time.Unix(0, p.lastOK.Load())) >= r.cfg.GiveUpAfter {
				p.stalled.Store(true)
				cancel()
				return
			}
		}
	}
}

// worker is one closed-loop client or one open-loop schedule. Everything
// in it is its own; only rec is shared, with the reporter.
type worker struct {
	id      int
	rng     *rand.Rand
	chooser chooser
	rec     *recorder
	values  []byte // shared, read-only: values are windows of it
	key     []byte // scratch
	opts    []client.Option
	timer   *time.Timer
}

func (r *runner) newWorker(id int, rec *recorder) *worker {
	seed := r.cfg.Seed + uint64(id)
	w := &worker{
		id:      id,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)),
		chooser: r.chooser,
		rec:     rec,
		values:  r.values,
	}
	return w
}

func (w *worker) value(size int) []byte {
	off := w.rng.IntN(len(w.values) - size + 1)
	return w.values[off : off+size]
}

// work sends requests until the phase's end, limit or ctx says stop.
func (r *runner) work(ctx context.Context, p *phase, w *worker) {
	var sched Schedule
	open := p.rate > 0
	if open {
		sched = NewSchedule(p.start, p.rate, r.cfg.Concurrency, w.id)
		w.timer = time.NewTimer(time.Hour)
		defer w.timer.Stop()
	}
	for i := int64(0); ctx.Err() == nil; i++ {
		if p.limit > 0 && p.sent.Add(1) > p.limit {
			return
		}
		var due time.Time
		if open {
			due = sched.At(i)
			if !p.end.IsZero() {
				if !due.Before(p.end) {
					return
				}
				if !time.Now().Before(p.end) {
					// Behind schedule at the end: what was due and
					// never sent is offered load the cluster did not
					// take, so report it rather than drop it.
					p.backlog.Add(sched.Before(p.end) - i)
					return
				}
			}
			if !sleepUntil(ctx, w.timer, due) {
				return
			}
		} else {
			due = time.Now()
			if !p.end.IsZero() && !due.Before(p.end) {
				return
			}
		}
		op := p.mix.pick(w.rng)
		notFound, err := r.do(ctx, w, op)
		done := time.Now()
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // our own interruption, not the cluster's failure
		}
		if err == nil {
			p.lastOK.Store(done.UnixNano())
		}
		if due.Before(p.measureFrom) {
			continue // warming up
		}
		// Latency counts from when the request was due: in a closed loop
		// that is when it was sent, in an open loop it includes any wait
		// behind earlier requests.
		w.rec.record(op, done.Sub(due), notFound, err)
	}
}

func sleepUntil(ctx context.Context, t *time.Timer, due time.Time) bool {
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// do sends one operation. notFound reports a read that found no value.
func (r *runner) do(ctx context.Context, w *worker, op Op) (notFound bool, err error) {
	if r.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.RequestTimeout)
		defer cancel()
	}
	b := r.cfg.Bucket
	switch op {
	case Insert:
		n := r.keys.claim()
		defer r.keys.ack(n)
		w.key = keyName(w.key, n)
		cc, err := r.kv.Put(ctx, b, w.key, w.value(r.cfg.ValueSize), r.cfg.WriteOptions...)
		if err == nil {
			r.contexts.set(n, cc)
		}
		return false, err
	case Read:
		n := w.chooser.next(w.rng, max(r.keys.count(), 1))
		w.key = keyName(w.key, n)
		obj, err := r.kv.Get(ctx, b, w.key, r.cfg.ReadOptions...)
		if err != nil {
			return false, err
		}
		r.contexts.set(n, obj.Context)
		return !obj.Found, nil
	case Update:
		n := w.chooser.next(w.rng, max(r.keys.count(), 1))
		w.key = keyName(w.key, n)
		cc, err := r.kv.Put(ctx, b, w.key, w.value(r.cfg.ValueSize), w.writeOptions(r.cfg.WriteOptions, r.contexts.get(n))...)
		if err == nil {
			r.contexts.set(n, cc)
		}
		return false, err
	case RMW:
		n := w.chooser.next(w.rng, max(r.keys.count(), 1))
		w.key = keyName(w.key, n)
		obj, err := r.kv.Get(ctx, b, w.key, r.cfg.ReadOptions...)
		if err != nil {
			return false, err
		}
		cc, err := r.kv.Put(ctx, b, w.key, w.value(r.cfg.ValueSize), w.writeOptions(r.cfg.WriteOptions, obj.Context)...)
		if err == nil {
			r.contexts.set(n, cc)
		}
		return !obj.Found, err
	}
	panic("bench: unknown op " + op.String())
}

// writeOptions appends the causal context, when there is one, to the
// configured write options, in the worker's scratch slice.
func (w *worker) writeOptions(base []client.Option, cc client.Context) []client.Option {
	if len(cc) == 0 {
		return base
	}
	w.opts = append(append(w.opts[:0], base...), client.Causal(cc))
	return w.opts
}
