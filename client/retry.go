package client

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
)

// retryBudget caps retries at a fraction of calls plus a small floor per
// second, like Finagle's and gRPC's retry budgets: when a cluster is
// struggling and most calls fail, retries add at most that fraction of load
// instead of multiplying it. It counts in thousandths of a retry, so that
// ten calls at 10% earn exactly one.
type retryBudget struct {
	perCall int64 // earned per call
	perSec  int64 // earned per second regardless of calls
	max     int64 // kept at most: the largest burst of retries

	mu     sync.Mutex
	tokens int64
	last   time.Time
}

const retryUnit = 1000

func newRetryBudget(ratio, perSec float64, now time.Time) *retryBudget {
	b := &retryBudget{perCall: int64(math.Round(ratio * retryUnit)), perSec: int64(math.Round(perSec * retryUnit))}
	// The burst allows a second's floor plus a hundred calls' worth.
	b.max = max(retryUnit, b.perSec+100*b.perCall)
	b.tokens, b.last = b.max, now
	return b
}

// deposit earns a call's share of a retry.
func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.tokens = min(b.max, b.tokens+b.perCall)
	b.mu.Unlock()
}

// withdraw spends one retry, reporting false when the budget is empty.
func (b *retryBudget) withdraw(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		earned := int64(min(float64(b.max), float64(b.perSec)*elapsed.Seconds()))
		if earned > 0 || b.perSec == 0 {
			b.tokens = min(b.max, b.tokens+earned)
			b.last = now
		}
	}
	if b.tokens < retryUnit {
		return false
	}
	b.tokens -= retryUnit
	return true
}

// retryableRead reports whether a get that failed with err, after reaching
// a node, may be asked of another node. A quorum error is not: another
// coordinator asks the same replicas. Neither is anything the request
// itself caused.
func retryableRead(err error) bool {
	switch {
	case errors.Is(err, cairn.ErrInvalidArgument), errors.Is(err, cairn.ErrUnauthorized),
		errors.Is(err, cairn.ErrQuorum), errors.Is(err, cairn.ErrNotFound):
		return false
	case errors.Is(err, cairn.ErrUnavailable), errors.Is(err, cairn.ErrOverloaded),
		errors.Is(err, cairn.ErrTimeout), errors.Is(err, cairn.ErrInternal),
		errors.Is(err, cairn.ErrProtocol):
		return true
	}
	return false
}

// retryPause is the pause before retry number n (1 for the first), with
// full jitter: uniform in [0, min(max, base * 2^(n-1))).
func retryPause(base, maxPause time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxPause; i++ {
		d *= 2
	}
	d = min(d, maxPause)
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}
