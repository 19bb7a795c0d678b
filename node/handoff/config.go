package handoff

import (
	"errors"
	"fmt"
	"time"
)

// Config paces hinted handoff, on both sides. Build it from DefaultConfig.
type Config struct {
	// Deliver hands the hints this node keeps to their owners when they
	// are back. Off, fallbacks still store hints but never hand them back
	// (node's Config.HintedHandoff). Default true.
	Deliver bool `yaml:"-"`
	// Interval is how often a node looks for owners to deliver hints to,
	// besides when membership says a node came back.
	Interval time.Duration `yaml:"interval"`
	// MaxConcurrent is how many owners a node delivers to at once.
	MaxConcurrent int `yaml:"max_concurrent"`
	// BatchBytes is the size of the first batch of a round; later batches
	// follow the receiver's credit, up to MaxBatchBytes.
	BatchBytes    int `yaml:"batch_bytes"`
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// MaxBatchItems bounds the objects in one batch.
	MaxBatchItems int `yaml:"max_batch_items"`
	// ReceiveBytesPerSecond and ReceiveBurstBytes are the receiver's pace:
	// all the handoff a node accepts, from every fallback together. The
	// burst is capped at one second's worth.
	ReceiveBytesPerSecond int64 `yaml:"receive_bytes_per_second"`
	ReceiveBurstBytes     int64 `yaml:"receive_burst_bytes"`
	// RetryBase and RetryMax bound the backoff after a failed round.
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
}

// DefaultConfig returns the defaults each field documents: delivery on,
// rounds every 5 s, two owners at once, 256 KiB first batches up to
// 4 MiB, 1000 objects a batch, 16 MiB/s accepted per node with 4 MiB
// bursts, retries from 1 s to 1 min.
func DefaultConfig() Config {
	return Config{
		Deliver:  true,
		Interval: 5 * time.Second, MaxConcurrent: 2,
		BatchBytes: 256 << 10, MaxBatchBytes: 4 << 20, MaxBatchItems: 1000,
		ReceiveBytesPerSecond: 16 << 20, ReceiveBurstBytes: 4 << 20,
		RetryBase: time.Second, RetryMax: time.Minute,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Interval <= 0 || c.MaxConcurrent < 1 || c.MaxBatchItems < 1 {
		errs = append(errs, fmt.Errorf("handoff: interval, max_concurrent and max_batch_items must be positive"))
	}
	if c.BatchBytes < 1 || c.MaxBatchBytes < c.BatchBytes {
		errs = append(errs, fmt.Errorf("handoff: batch_bytes must be positive and at most max_batch_bytes"))
	}
	if c.ReceiveBytesPerSecond < 1 || c.ReceiveBurstBytes < 1 {
		errs = append(errs, fmt.Errorf("handoff: receive_bytes_per_second and receive_burst_bytes must be positive"))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("handoff: retry_base must be positive and at most retry_max"))
	}
	return errors.Join(errs...)
}

// receiveBurst is the receiver bucket's burst: never above one second's
// worth, so a low rate is a low rate from the first batch.
func (c Config) receiveBurst() int64 {
	return min(c.ReceiveBurstBytes, max(c.ReceiveBytesPerSecond, int64(c.BatchBytes)/4))
}

// minCredit is the smallest next batch a receiver invites, so a sender is
// never told to send batches too small to be worth a round trip.
func (c Config) minCredit() int64 { return int64(c.BatchBytes) / 4 }
