package console

import (
	"sync"
	"time"
)

// Ops are the request types the console charts.
var Ops = []string{"get", "put"}

// Reading is what a node reads off its own metrics at one instant: every
// figure is cumulative since the process started.
type Reading struct {
	Ops map[string]OpReading
	// Repaired counts the keys anti-entropy repaired.
	Repaired uint64
}

// OpReading is one request type's cumulative figures. Buckets are the
// latency histogram's cumulative counts, one per bound of the History's
// Bounds and a last one for +Inf.
type OpReading struct {
	Requests, Errors uint64
	Buckets          []uint64
}

// Point is one sample's worth of a node's history: what happened since the
// sample before it.
type Point struct {
	// At is the sample's time, Unix milliseconds.
	At       int64              `json:"t"`
	Ops      map[string]OpPoint `json:"ops"`
	Repaired uint64             `json:"repaired"`
}

// OpPoint is one request type's share of a Point. Buckets are counts per
// latency bucket (not cumulative), the last one for latencies past every
// bound.
type OpPoint struct {
	Requests uint64   `json:"n"`
	Errors   uint64   `json:"err"`
	Buckets  []uint64 `json:"b"`
}

// History is a node's recent metrics: a ring of the last Size points. It is
// safe for concurrent use; Record takes the time as an input, so that tests
// drive it without a clock.
type History struct {
	bounds []float64

	mu     sync.Mutex
	points []Point
	next   int // where the next point goes
	full   bool
	last   Reading
	have   bool
}

// NewHistory keeps size points of histograms with the given upper bounds
// (seconds).
func NewHistory(size int, bounds []float64) *History {
	return &History{bounds: bounds, points: make([]Point, max(size, 1))}
}

// Bounds are the latency histogram's upper bounds, in seconds.
func (h *History) Bounds() []float64 { return h.bounds }

// Record adds the point between the previous reading and r. The first
// reading only sets the baseline. A figure that went down (it cannot,
// short of a bug) counts as no change rather than a huge one.
func (h *History) Record(at time.Time, r Reading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.have {
		h.last, h.have = r, true
		return
	}
	p := Point{At: at.UnixMilli(), Ops: make(map[string]OpPoint, len(r.Ops)), Repaired: delta(r.Repaired, h.last.Repaired)}
	for name, cur := range r.Ops {
		p.Ops[name] = opDelta(cur, h.last.Ops[name])
	}
	h.last = r
	h.points[h.next] = p
	h.next = (h.next + 1) % len(h.points)
	h.full = h.full || h.next == 0
}

// opDelta is what happened between two readings of one request type, the
// cumulative bucket counts turned into counts per bucket.
func opDelta(cur, prev OpReading) OpPoint {
	o := OpPoint{Requests: delta(cur.Requests, prev.Requests), Errors: delta(cur.Errors, prev.Errors), Buckets: make([]uint64, len(cur.Buckets))}
	var below, belowPrev uint64
	for i, c := range cur.Buckets {
		var pc uint64
		if i < len(prev.Buckets) {
			pc = prev.Buckets[i]
		}
		o.Buckets[i] = delta(delta(c, below), delta(pc, belowPrev))
		below, belowPrev = c, pc
	}
	return o
}

func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return 0
	}
	return cur - prev
}

// Points returns the points held, oldest first.
func (h *History) Points() []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]Point(nil), h.points[:h.next]...)
	}
	return append(append([]Point(nil), h.points[h.next:]...), h.points[:h.next]...)
}
