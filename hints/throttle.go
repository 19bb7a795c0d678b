package hints

// Throttle is a token bucket of bytes: it refills at Rate bytes a second up
// to Burst. A receiver runs one for all the handoff it accepts; each batch
// is admitted whole or refused with the time after which it would fit.
type Throttle struct {
	rate   float64 // bytes per nanosecond
	burst  float64
	tokens float64
	last   int64
	// minCredit is the smallest batch the throttle invites, so a sender is
	// never told to send batches too small to be worth a round trip.
	minCredit int64
}

// NewThrottle returns a full bucket refilling at bytesPerSecond up to burst
// bytes. minCredit is the smallest next-batch size Credit suggests.
func NewThrottle(bytesPerSecond, burst, minCredit int64) *Throttle {
	return &Throttle{rate: float64(bytesPerSecond) / 1e9, burst: float64(burst), tokens: float64(burst), minCredit: minCredit}
}

func (t *Throttle) refill(now int64) {
	if t.last == 0 {
		t.last = now
	}
	if now > t.last {
		t.tokens = min(t.burst, t.tokens+float64(now-t.last)*t.rate)
		t.last = now
	}
}

// Admit takes bytes from the bucket if they are there. Otherwise it takes
// nothing and returns how long (nanoseconds) until they would be. A batch
// larger than the burst is admitted once the bucket is full, so an oversized
// batch is slowed down, never refused forever.
func (t *Throttle) Admit(bytes int64, now int64) (ok bool, retryAfter int64) {
	t.refill(now)
	need := min(float64(bytes), t.burst)
	if t.tokens >= need {
		t.tokens -= float64(bytes)
		return true, 0
	}
	if t.rate <= 0 {
		return false, int64(1e9)
	}
	return false, int64((need-t.tokens)/t.rate) + 1
}

// Credit is how many bytes the sender is invited to put in its next batch:
// what the bucket holds now, at least minCredit and at most the burst.
func (t *Throttle) Credit(now int64) int64 {
	t.refill(now)
	return max(t.minCredit, min(int64(t.tokens), int64(t.burst)))
}
