package transfer

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairnkv/cairn/internal/pace"
)

// Config paces ownership transfer.
type Config struct {
	// Interval is how often a node looks for partitions to send, besides
	// when membership changes. Default 1 s.
	Interval time.Duration `yaml:"interval"`
	// MaxConcurrent is how many partition streams a node sends at once.
	// Default 2.
	MaxConcurrent int `yaml:"max_concurrent"`
	// BytesPerSecond bounds what a node sends in all its streams together
	// (records' keys and values). Default 32 MiB/s.
	BytesPerSecond int64 `yaml:"bytes_per_second"`
	// BatchKeys and BatchBytes bound one push; a batch also stays within
	// the frame and element limits of a message. Defaults 256 and 1 MiB,
	// as anti-entropy's.
	BatchKeys  int `yaml:"batch_keys"`
	BatchBytes int `yaml:"batch_bytes"`
	// CallTimeout bounds one push or done call. Default 30 s.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// RetryAfter is how long a stream that failed waits before it is
	// tried again (from its cursor). Default 2 s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Settle is how long a sender waits, once every live node knows the
	// change, before it takes its first snapshot: a write whose route was
	// chosen before its coordinator knew the change (and so does not go to
	// the targets) has finished by then, and is in the snapshot. It must
	// be at least the longest write deadline the cluster expects; node
	// raises it to its request timeout. Default 3 s.
	Settle time.Duration `yaml:"settle"`
}

// maxBatchKeys bounds a push a node accepts.
const maxBatchKeys = 1024

// DefaultConfig returns the defaults each field documents.
func DefaultConfig() Config {
	return Config{Interval: time.Second, MaxConcurrent: 2, BytesPerSecond: 32 << 20,
		BatchKeys: 256, BatchBytes: 1 << 20, CallTimeout: 30 * time.Second, RetryAfter: 2 * time.Second,
		Settle: 3 * time.Second}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("transfer: "+format, args...)) }
	if c.Interval <= 0 {
		bad("interval %v: must be positive", c.Interval)
	}
	if c.MaxConcurrent < 1 || c.MaxConcurrent > 64 {
		bad("max_concurrent %d: must be between 1 and 64", c.MaxConcurrent)
	}
	if err := pace.Check(float64(c.BytesPerSecond), max(c.BytesPerSecond, 1)); err != nil {
		bad("bytes_per_second: %v", err)
	}
	if c.BatchKeys < 1 || c.BatchKeys > maxBatchKeys {
		bad("batch_keys %d: must be between 1 and %d", c.BatchKeys, maxBatchKeys)
	}
	if c.BatchBytes < 1<<10 || c.BatchBytes > 64<<20 {
		bad("batch_bytes %d: must be between 1 KiB and 64 MiB", c.BatchBytes)
	}
	if c.CallTimeout <= 0 {
		bad("call_timeout %v: must be positive", c.CallTimeout)
	}
	if c.RetryAfter <= 0 {
		bad("retry_after %v: must be positive", c.RetryAfter)
	}
	if c.Settle < 0 {
		bad("settle %v: must not be negative", c.Settle)
	}
	return errors.Join(errs...)
}
