package antientropy

import (
	"fmt"
	"math"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/pace"
)

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
	keys, bytes *pace.Bucket
}

// Validate reports every problem, wrapping cairn.ErrInvalidArgument.
func (c RebuildConfig) Validate() error {
	errs := budgetProblems("keys ", c.KeysPerSecond, 1)
	errs = append(errs, budgetProblems("bytes ", c.BytesPerSecond, 1)...)
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
	burst := func(rate float64) int64 { return int64(max(1, min(rate, math.MaxInt32))) }
	keys, _ := pace.NewBucket(cfg.KeysPerSecond, burst(cfg.KeysPerSecond))
	bytes, _ := pace.NewBucket(cfg.BytesPerSecond, burst(cfg.BytesPerSecond))
	return &Pacer{keys: keys, bytes: bytes}, nil
}

// Take accounts for keys keys and n bytes read at now and returns how many
// nanoseconds the caller should wait before reading more.
func (p *Pacer) Take(now int64, keys, n int) int64 {
	return max(p.keys.Take(now, int64(keys)), p.bytes.Take(now, int64(n)))
}

// budgetProblems reports what is wrong with a rate and a burst, each
// problem named after the budget.
func budgetProblems(name string, rate float64, burst int) []error {
	err := pace.Check(rate, int64(burst))
	if err == nil {
		return nil
	}
	var errs []error
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		errs = append(errs, fmt.Errorf("%s%w", name, e))
	}
	return errs
}
