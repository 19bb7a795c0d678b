package pace

import (
	"errors"
	"fmt"
	"math"
)

// Bucket paces work by a clock the caller reads: it refills at a rate in
// tokens per second up to a burst, and starts full. Times are nanoseconds
// on any clock that does not jump (a monotonic reading, or Unix time); a
// clock that steps backwards refills nothing until it passes the latest
// time seen. It is not safe for concurrent use.
//
// The three ways to spend suit three callers:
//   - Admit takes n tokens only if they are there, else takes nothing and
//     says how long until they would be: work offered in batches, each
//     accepted whole or refused with the time to wait. A request larger
//     than the burst is admitted once the bucket is full, so an oversized
//     batch is slowed down, never refused for ever.
//   - Take takes n tokens whatever the balance and says how long until the
//     balance is back to zero: a loop that must do the work anyway and can
//     wait, or work whose cost is only known once it is done.
//   - ReadyAt says when Admit would succeed, for a caller that sleeps until
//     then.
type Bucket struct {
	rate, burst float64
	tokens      float64
	// slack absorbs floating-point rounding, so that at the time ReadyAt
	// names, Admit succeeds: a balance within slack of n covers n.
	slack   float64
	last    int64
	started bool
}

// NewBucket returns a full bucket refilling at rate tokens per second (a
// positive, finite number) up to burst tokens (at least 1).
func NewBucket(rate float64, burst int64) (*Bucket, error) {
	if err := Check(rate, burst); err != nil {
		return nil, err
	}
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), slack: 1e-9 * float64(burst)}, nil
}

// Check reports every problem with a rate and a burst, one error each,
// joined: "rate 0: ...", "burst 0: ...". Callers prefix the name of the
// budget.
func Check(rate float64, burst int64) error {
	var errs []error
	if !(rate > 0) || math.IsInf(rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v: want a positive, finite number per second", rate))
	}
	if burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d: want at least 1", burst))
	}
	return errors.Join(errs...)
}

func (b *Bucket) refill(now int64) {
	if !b.started {
		b.started, b.last = true, now
		return
	}
	if now <= b.last {
		return
	}
	b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate/1e9)
	b.last = now
}

// Tokens is the balance at now; negative while in debt.
func (b *Bucket) Tokens(now int64) float64 {
	b.refill(now)
	return b.tokens
}

// Admit takes n tokens if the balance at now covers them (or, for n above
// the burst, if the bucket is full) and reports whether it did; when it
// did not, wait is how many nanoseconds after now it would.
func (b *Bucket) Admit(now int64, n int64) (ok bool, wait int64) {
	b.refill(now)
	need := min(float64(n), b.burst)
	if b.tokens >= need-b.slack {
		b.tokens -= float64(n)
		return true, 0
	}
	return false, b.behind(now, b.wait(need))
}

// Take takes n tokens whatever the balance and returns how many
// nanoseconds after now the balance is back to zero: 0 if it did not go
// into debt.
func (b *Bucket) Take(now int64, n int64) int64 {
	b.refill(now)
	b.tokens -= float64(n)
	return b.behind(now, b.wait(0))
}

// ReadyAt is the earliest time at or after now at which Admit(n) succeeds.
func (b *Bucket) ReadyAt(now int64, n int64) int64 {
	b.refill(now)
	w := b.wait(min(float64(n), b.burst))
	if w > math.MaxInt64-b.last {
		return math.MaxInt64
	}
	return b.last + w
}

// behind turns a wait counted from b.last into one counted from now: b.last
// is ahead of now only if the clock stepped back.
func (b *Bucket) behind(now, w int64) int64 {
	if w == 0 {
		return 0
	}
	if d := b.last - now; d > 0 && w < math.MaxInt64-d {
		w += d
	}
	return w
}

// wait is the time until the balance reaches target, from b.last.
func (b *Bucket) wait(target float64) int64 {
	if b.tokens >= target-b.slack {
		return 0
	}
	// Aim at half the slack, so rounding cannot leave the balance short.
	w := math.Ceil((target - b.slack/2 - b.tokens) / b.rate * 1e9)
	if w >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(w)
}
