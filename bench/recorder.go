package bench

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cairnkv/cairn/client"
)

// Latencies are recorded in microseconds from 1 µs to a minute with three
// significant digits (0.1% error), HdrHistogram's usual precision. A longer
// latency is recorded as a minute: the run's timeouts are far shorter.
const (
	histMaxMicros = int64(time.Minute / time.Microsecond)
	histDigits    = 3
)

func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMaxMicros, histDigits) }

// ErrorKind is how a failed request is counted.
type ErrorKind int

// The kinds, from the SDK's sentinel errors. A quorum error decided by the
// deadline counts as a timeout.
const (
	KindTimeout ErrorKind = iota
	KindQuorum
	KindUnavailable
	KindOverloaded
	KindInvalidArgument
	KindOther
	numKinds
)

var kindNames = [numKinds]string{"timeout", "quorum", "unavailable", "overloaded", "invalid_argument", "other"}

func (k ErrorKind) String() string { return kindNames[k] }

// Classify names the kind of a request's error.
func Classify(err error) ErrorKind {
	switch {
	case errors.Is(err, client.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, client.ErrQuorum):
		return KindQuorum
	case errors.Is(err, client.ErrUnavailable):
		return KindUnavailable
	case errors.Is(err, client.ErrOverloaded):
		return KindOverloaded
	case errors.Is(err, client.ErrInvalidArgument):
		return KindInvalidArgument
	}
	return KindOther
}

// opStats is what happened to one operation over some span: a worker's
// interval, an interval of the whole run, or the whole run.
type opStats struct {
	hist     *hdrhistogram.Histogram // latencies of successes, µs
	notFound int64                   // successful reads that found no value
	errs     [numKinds]int64
	samples  [numKinds]string // the first error message of each kind
}

func newOpStats() *opStats { return &opStats{hist: newHistogram()} }

func (s *opStats) ok() int64 { return s.hist.TotalCount() }

func (s *opStats) errors() int64 {
	var n int64
	for _, e := range s.errs {
		n += e
	}
	return n
}

func (s *opStats) record(lat time.Duration, notFound bool, err error) {
	if err != nil {
		k := Classify(err)
		s.errs[k]++
		if s.samples[k] == "" {
			s.samples[k] = err.Error()
		}
		return
	}
	us := max(lat.Microseconds(), 1)
	_ = s.hist.RecordValue(min(us, histMaxMicros)) // in range by construction
	if notFound {
		s.notFound++
	}
}

func (s *opStats) merge(from *opStats) {
	s.hist.Merge(from.hist)
	s.notFound += from.notFound
	for k := range s.errs {
		s.errs[k] += from.errs[k]
		if s.samples[k] == "" {
			s.samples[k] = from.samples[k]
		}
	}
}

func (s *opStats) reset() {
	s.hist.Reset()
	*s = opStats{hist: s.hist}
}

// window holds one opStats per operation of the mix (nil for the others).
type window [numOps]*opStats

func newWindow(ops []Op) window {
	var w window
	for _, op := range ops {
		w[op] = newOpStats()
	}
	return w
}

// maxRecorders bounds the recorders of a run: a histogram takes about
// 140 KB, two per operation per recorder, so beyond this many workers they
// share recorders (worker i uses i mod maxRecorders) rather than let memory
// grow with the concurrency; at that point the workers outnumber the cores
// many times over and the shared lock is held for a single record.
const maxRecorders = 64

// recorder is one worker's current interval. The worker records into it;
// the reporter swaps it for an empty one once per interval, so the worker
// waits for a pointer swap at most, never for a merge.
type recorder struct {
	mu  sync.Mutex
	cur window
}

func (r *recorder) record(op Op, lat time.Duration, notFound bool, err error) {
	r.mu.Lock()
	r.cur[op].record(lat, notFound, err)
	r.mu.Unlock()
}

// swap installs empty (which must be reset) and returns what was recorded.
func (r *recorder) swap(empty window) window {
	r.mu.Lock()
	defer r.mu.Unlock()
	full := r.cur
	r.cur = empty
	return full
}

// collector gathers the workers' recorders into intervals and totals. Only
// the reporter goroutine uses it.
type collector struct {
	ops    []Op
	recs   []*recorder
	spares []window // per worker: the empty window to swap in next
	total  window
}

func newCollector(ops []Op, workers int) *collector {
	c := &collector{ops: ops, total: newWindow(ops)}
	for range workers {
		c.recs = append(c.recs, &recorder{cur: newWindow(ops)})
		c.spares = append(c.spares, newWindow(ops))
	}
	return c
}

// collect takes every worker's interval, merges them into one (also added
// to the totals), and returns it.
func (c *collector) collect() window {
	interval := newWindow(c.ops)
	for i, r := range c.recs {
		full := r.swap(c.spares[i])
		for _, op := range c.ops {
			interval[op].merge(full[op])
			full[op].reset()
		}
		c.spares[i] = full
	}
	for _, op := range c.ops {
		c.total[op].merge(interval[op])
	}
	return interval
}
