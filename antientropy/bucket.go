package antientropy

import (
	"fmt"
	"math"

	"github.com/cairnkv/cairn"
)

// TokenBucket paces work by a clock the caller reads: it refills at Rate
// tokens per second up to Burst, and starts full. Times are nanoseconds on
// any clock that does not jump (node passes time.Now().UnixNano() or a
// monotonic reading); a clock that steps backwards refills nothing until it
// passes the latest time seen. It is not safe for concurrent use.
//
// Allow suits a scheduler (start only what the budget covers now); Take
// suits a loop that must do the work anyway and can wait, such as a tree
// rebuild reading keys from storage: it may run into debt and says how long
// to wait for the balance to recover.
type TokenBucket struct {
	rate, burst float64
	tokens      float64
	// slack absorbs floating-point rounding, so that at the time ReadyAt
	// names, Allow succeeds: a balance within slack of n covers n.
	slack   float64
	last    int64
	started bool
}

// NewTokenBucket returns a full bucket. rate is in tokens per second and
// must be positive and finite; burst must be at least 1.
func NewTokenBucket(rate float64, burst int) (*TokenBucket, error) {
	if errs := bucketProblems("", rate, burst); len(errs) > 0 {
		return nil, cairn.InvalidArgument("antientropy token bucket: %v", joinProblems(errs))
	}
	return &TokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), slack: 1e-9 * float64(burst)}, nil
}

func bucketProblems(name string, rate float64, burst int) []error {
	var errs []error
	if !(rate > 0) || math.IsInf(rate, 0) {
		errs = append(errs, fmt.Errorf("%srate %v: want a positive, finite number per second", name, rate))
	}
	if burst < 1 {
		errs = append(errs, fmt.Errorf("%sburst %d: want at least 1", name, burst))
	}
	return errs
}

func (b *TokenBucket) refill(now int64) {
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
func (b *TokenBucket) Tokens(now int64) float64 {
	b.refill(now)
	return b.tokens
}

// Allow takes n tokens if the balance at now covers them, and reports
// whether it did.
func (b *TokenBucket) Allow(now int64, n int) bool {
	b.refill(now)
	if b.tokens < float64(n)-b.slack {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// Take takes n tokens whatever the balance and returns how many
// nanoseconds after now the balance is back to zero: 0 if it did not go
// into debt.
func (b *TokenBucket) Take(now int64, n int) int64 {
	b.refill(now)
	b.tokens -= float64(n)
	w := b.wait(0)
	if w == 0 {
		return 0
	}
	// b.last is ahead of now only if the clock stepped back.
	if behind := b.last - now; behind > 0 && w < math.MaxInt64-behind {
		w += behind
	}
	return w
}

// ReadyAt is the earliest time at or after now at which the balance covers
// n tokens (for n above Burst, never: math.MaxInt64).
func (b *TokenBucket) ReadyAt(now int64, n int) int64 {
	b.refill(now)
	if float64(n) > b.burst {
		return math.MaxInt64
	}
	w := b.wait(float64(n))
	if w > math.MaxInt64-b.last {
		return math.MaxInt64
	}
	return b.last + w
}

// wait is the time until the balance reaches target, from b.last.
func (b *TokenBucket) wait(target float64) int64 {
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

// RebuildConfig bounds the IO of rebuilding a tree from storage.
type RebuildConfig struct {
	// KeysPerSecond is the sustained number of keys read. Default 20,000.
	KeysPerSecond float64
	// BytesPerSecond is the sustained number of stored bytes read (keys
	// and encoded objects). Default 8 MiB/s.
	BytesPerSecond float64
}

// DefaultRebuildConfig returns the defaults: a node rebuilding every tree
// after a crash reads at most 8 MiB/s, a fraction of a disk's bandwidth.
func DefaultRebuildConfig() RebuildConfig {
	return RebuildConfig{KeysPerSecond: 20_000, BytesPerSecond: 8 << 20}
}

// Pacer paces a rebuild by keys and bytes at once. Bursts are one second's
// worth, so a rebuild never reads more than two seconds' budget in any one
// second.
type Pacer struct {
	keys, bytes *TokenBucket
}

// Validate reports every problem, wrapping cairn.ErrInvalidArgument.
func (c RebuildConfig) Validate() error {
	errs := bucketProblems("keys ", c.KeysPerSecond, 1)
	errs = append(errs, bucketProblems("bytes ", c.BytesPerSecond, 1)...)
	if len(errs) > 0 {
		return cairn.InvalidArgument("antientropy rebuild config: %v", joinProblems(errs))
	}
	return nil
}

// NewPacer returns a pacer for the config.
func NewPacer(cfg RebuildConfig) (*Pacer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	burst := func(rate float64) int { return int(max(1, min(rate, math.MaxInt32))) }
	keys, _ := NewTokenBucket(cfg.KeysPerSecond, burst(cfg.KeysPerSecond))
	bytes, _ := NewTokenBucket(cfg.BytesPerSecond, burst(cfg.BytesPerSecond))
	return &Pacer{keys: keys, bytes: bytes}, nil
}

// Take accounts for keys keys and n bytes read at now and returns how many
// nanoseconds the caller should wait before reading more.
func (p *Pacer) Take(now int64, keys, n int) int64 {
	return max(p.keys.Take(now, keys), p.bytes.Take(now, n))
}
