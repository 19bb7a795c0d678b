package client

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// health remembers the nodes that refused a connection, so that calls skip
// them for a while instead of dialling a dead node on every call. A node's
// pause doubles with each consecutive refusal, up to a cap; after the pause
// the next call may try it again (one probe, not a stampede: the pool shares
// one dial among the calls waiting for it), and an answer clears it.
type health struct {
	base, max time.Duration

	mu   sync.Mutex
	down map[string]*downState
	n    atomic.Int32 // len(down), read without the lock on the hot path
}

type downState struct {
	fails int
	until time.Time
}

func newHealth(base, max time.Duration) *health {
	return &health{base: base, max: max, down: map[string]*downState{}}
}

// usable reports whether addr may be tried now.
func (h *health) usable(addr string, now time.Time) bool {
	if h.n.Load() == 0 {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.down[addr]
	return !ok || !now.Before(st.until)
}

// fail records a refused connection and returns how long addr is skipped.
func (h *health) fail(addr string, now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.down[addr]
	if !ok {
		st = &downState{}
		h.down[addr] = st
		h.n.Add(1)
	}
	st.fails++
	pause := h.base
	for i := 1; i < st.fails && pause < h.max; i++ {
		pause *= 2
	}
	pause = min(pause, h.max)
	// Up to a quarter of jitter, so that the clients of a node that died
	// together do not all probe it in the same instant.
	pause -= time.Duration(rand.Int64N(int64(pause)/4 + 1))
	st.until = now.Add(pause)
	return pause
}

// ok clears addr after it answered.
func (h *health) ok(addr string) {
	if h.n.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, found := h.down[addr]; found {
		delete(h.down, addr)
		h.n.Add(-1)
	}
}

// nextUsable returns the earliest moment a skipped node may be tried again,
// false when none is skipped.
func (h *health) nextUsable() (time.Time, bool) {
	if h.n.Load() == 0 {
		return time.Time{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var first time.Time
	for _, st := range h.down {
		if first.IsZero() || st.until.Before(first) {
			first = st.until
		}
	}
	return first, !first.IsZero()
}
