package bench

import (
	"math"
	"time"
)

// Schedule is one open-loop worker's intended send times: request i is due
// at Start + Offset + i*Interval whatever happened to the requests before
// it. A worker that falls behind sends late requests at once, and their
// latency counts from when they were due: that is what keeps a stall from
// hiding (coordinated omission).
type Schedule struct {
	Start time.Time
	// Offset staggers the workers so they do not all fire together.
	Offset time.Duration
	// Interval is in nanoseconds, as a float so that a rate such as 3 ops/s
	// does not drift by rounding.
	Interval float64
}

// NewSchedule is worker w's schedule (of workers) when the workers share
// rate requests per second between them: each sends rate/workers per
// second, and worker w starts w/workers of an interval after Start.
func NewSchedule(start time.Time, rate float64, workers, w int) Schedule {
	interval := float64(workers) / rate * float64(time.Second)
	return Schedule{
		Start:    start,
		Offset:   time.Duration(interval * float64(w) / float64(workers)),
		Interval: interval,
	}
}

// At is the intended send time of request i.
func (s Schedule) At(i int64) time.Time {
	return s.Start.Add(s.Offset + time.Duration(float64(i)*s.Interval))
}

// Before is how many requests are due strictly before t.
func (s Schedule) Before(t time.Time) int64 {
	d := t.Sub(s.Start) - s.Offset
	if d <= 0 {
		return 0
	}
	n := int64(math.Ceil(float64(d) / s.Interval))
	// Guard the float rounding at the boundary in both directions.
	for n > 0 && !s.At(n-1).Before(t) {
		n--
	}
	for s.At(n).Before(t) {
		n++
	}
	return n
}
