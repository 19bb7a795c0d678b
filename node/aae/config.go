package aae

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairnkv/cairn/antientropy"
)

// Config configures active anti-entropy: the Merkle trees every node keeps
// of the partitions it holds, and the exchanges through which the replicas
// of a partition compare them and sync what differs. The budgets bound
// what this node initiates; see docs/ARCHITECTURE.md, "Anti-entropy".
//
// There are two budgets. The routine one compares every partition once per
// Interval, slowly. The urgent one catches up a peer that came back (or
// this node, when it starts): the partitions shared with it are exchanged
// first, at a pace that finishes in seconds.
type Config struct {
	// Enabled keeps the trees and runs exchanges. Default true. Off, the
	// node keeps no trees and refuses its peers' exchanges; turning it on
	// again rebuilds the trees from storage.
	Enabled bool `yaml:"enabled"`
	// Interval is the least time between two routine exchanges of one
	// partition. A peer that comes back is exchanged with at once,
	// whatever the interval. Default 5 minutes.
	Interval time.Duration `yaml:"interval"`
	// MaxConcurrent is the most routine exchanges this node initiates at
	// once. Default 2.
	MaxConcurrent int `yaml:"max_concurrent"`
	// ExchangesPerSecond and ExchangeBurst bound how fast routine
	// exchanges start. An exchange of identical replicas is one round trip
	// of about 100 bytes. Defaults 8 per second, burst 16: a node
	// replicating 1,024 partitions compares each of them every Interval
	// with room to spare.
	ExchangesPerSecond float64 `yaml:"exchanges_per_second"`
	ExchangeBurst      int     `yaml:"exchange_burst"`
	// RepairKeysPerSecond and RepairBurst bound the keys this node's
	// routine exchanges repair: no routine exchange starts while those
	// already finished exceed the budget. Defaults 2,000 keys per second,
	// burst 20,000.
	RepairKeysPerSecond float64 `yaml:"repair_keys_per_second"`
	RepairBurst         int     `yaml:"repair_burst"`
	// UrgentMaxConcurrent, UrgentExchangesPerSecond, UrgentExchangeBurst,
	// UrgentRepairKeysPerSecond and UrgentRepairBurst are the urgent
	// budget: the exchanges of the partitions shared with a peer that came
	// back, and of every partition when this node starts. Defaults 8 at
	// once, 200 per second with a burst of 200, 50,000 keys per second
	// with a burst of 100,000: a node sharing 1,024 partitions with two
	// peers compares all of them in about ten seconds, and 100,000 missed
	// keys are repaired in a few.
	UrgentMaxConcurrent       int     `yaml:"urgent_max_concurrent"`
	UrgentExchangesPerSecond  float64 `yaml:"urgent_exchanges_per_second"`
	UrgentExchangeBurst       int     `yaml:"urgent_exchange_burst"`
	UrgentRepairKeysPerSecond float64 `yaml:"urgent_repair_keys_per_second"`
	UrgentRepairBurst         int     `yaml:"urgent_repair_burst"`
	// RetryAfter is how long a partition and peer wait after an exchange
	// failed. Default 10 s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// BusyRetryAfter is how long a partition and peer wait after an
	// exchange found the partition busy with another exchange (here or at
	// the peer): not a failure, and the other one is usually over soon.
	// Default 1 s.
	BusyRetryAfter time.Duration `yaml:"busy_retry_after"`
	// MaxKeysPerExchange ends an exchange once it has found this many
	// differing keys; the next one, started at once within the same
	// budget, finds the rest. Default 10,000.
	MaxKeysPerExchange int `yaml:"max_keys_per_exchange"`
	// BatchKeys and BatchBytes bound one fetch or push of repaired
	// objects (at least one object goes in a batch), and so what a
	// repair holds in memory: one fetch answer and one push batch.
	// Defaults 256 keys, 1 MiB.
	BatchKeys  int `yaml:"batch_keys"`
	BatchBytes int `yaml:"batch_bytes"`
	// RebuildKeysPerSecond and RebuildBytesPerSecond bound the reading of
	// storage when trees are rebuilt in the background (after a crash, or
	// when anti-entropy is turned on over existing data). A partition an
	// exchange needs before the background reaches it is rebuilt at once,
	// unpaced: one partition is a small share of the data. Defaults 20,000
	// keys and 8 MiB per second.
	RebuildKeysPerSecond  float64 `yaml:"rebuild_keys_per_second"`
	RebuildBytesPerSecond float64 `yaml:"rebuild_bytes_per_second"`
	// PruneInterval is the time between two pruning passes: each looks
	// for keys whose version vectors name actors this node retired, and
	// prunes them where every copy in the cluster agrees (see
	// docs/ARCHITECTURE.md, "Pruning retired actors"). 0 turns pruning
	// off. Default 1 minute.
	PruneInterval time.Duration `yaml:"prune_interval"`
	// PruneSettle is how long a pass waits between its two looks at every
	// copy of its keys; it must exceed the longest a copy sent between
	// nodes can take to arrive (a peer call's deadline is seconds).
	// Default 2 minutes, at least 1 second.
	PruneSettle time.Duration `yaml:"prune_settle"`
	// PruneScanKeys bounds the objects one pass reads, and PruneMaxKeys
	// the keys it prunes. Defaults 20,000 and 256 (at most 1,024).
	PruneScanKeys int `yaml:"prune_scan_keys"`
	PruneMaxKeys  int `yaml:"prune_max_keys"`
}

// maxBatchKeys is the most keys a peer may fetch or push in one message.
const maxBatchKeys = 1024

// DefaultConfig returns the defaults each field documents.
func DefaultConfig() Config {
	rb := antientropy.DefaultRebuildConfig()
	return Config{
		Enabled:             true,
		Interval:            5 * time.Minute,
		MaxConcurrent:       2,
		ExchangesPerSecond:  8,
		ExchangeBurst:       16,
		RepairKeysPerSecond: 2000,
		RepairBurst:         20_000,

		UrgentMaxConcurrent:       8,
		UrgentExchangesPerSecond:  200,
		UrgentExchangeBurst:       200,
		UrgentRepairKeysPerSecond: 50_000,
		UrgentRepairBurst:         100_000,

		RetryAfter:         10 * time.Second,
		BusyRetryAfter:     time.Second,
		MaxKeysPerExchange: 10_000,
		BatchKeys:          256,
		BatchBytes:         1 << 20,

		RebuildKeysPerSecond:  rb.KeysPerSecond,
		RebuildBytesPerSecond: rb.BytesPerSecond,

		PruneInterval: time.Minute,
		PruneSettle:   2 * time.Minute,
		PruneScanKeys: 20_000,
		PruneMaxKeys:  256,
	}
}

func (c Config) scheduler() antientropy.SchedulerConfig {
	return antientropy.SchedulerConfig{
		MaxConcurrent: c.MaxConcurrent, MinInterval: int64(c.Interval),
		RetryAfter: int64(c.RetryAfter), BusyRetryAfter: int64(c.BusyRetryAfter),
		ExchangesPerSecond: c.ExchangesPerSecond, ExchangeBurst: c.ExchangeBurst,
		RepairsPerSecond: c.RepairKeysPerSecond, RepairBurst: c.RepairBurst,
		UrgentMaxConcurrent:      c.UrgentMaxConcurrent,
		UrgentExchangesPerSecond: c.UrgentExchangesPerSecond, UrgentExchangeBurst: c.UrgentExchangeBurst,
		UrgentRepairsPerSecond: c.UrgentRepairKeysPerSecond, UrgentRepairBurst: c.UrgentRepairBurst,
	}
}

func (c Config) rebuild() antientropy.RebuildConfig {
	return antientropy.RebuildConfig{KeysPerSecond: c.RebuildKeysPerSecond, BytesPerSecond: c.RebuildBytesPerSecond}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.scheduler().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("aae: %w", err))
	}
	if err := c.rebuild().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("aae: %w", err))
	}
	if c.MaxKeysPerExchange < 1 {
		errs = append(errs, fmt.Errorf("aae: max_keys_per_exchange %d: must be at least 1", c.MaxKeysPerExchange))
	}
	if c.BatchKeys < 1 || c.BatchKeys > maxBatchKeys {
		errs = append(errs, fmt.Errorf("aae: batch_keys %d: must be between 1 and %d", c.BatchKeys, maxBatchKeys))
	}
	if c.BatchBytes < 1 || c.BatchBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("aae: batch_bytes %d: must be between 1 and 16 MiB", c.BatchBytes))
	}
	if c.PruneInterval < 0 {
		errs = append(errs, fmt.Errorf("aae: prune_interval %v: must not be negative (0 turns pruning off)", c.PruneInterval))
	}
	if c.PruneInterval > 0 {
		if c.PruneSettle < time.Second {
			errs = append(errs, fmt.Errorf("aae: prune_settle %v: must be at least 1s", c.PruneSettle))
		}
		if c.PruneScanKeys < 1 {
			errs = append(errs, fmt.Errorf("aae: prune_scan_keys %d: must be at least 1", c.PruneScanKeys))
		}
		if c.PruneMaxKeys < 1 || c.PruneMaxKeys > maxBatchKeys {
			errs = append(errs, fmt.Errorf("aae: prune_max_keys %d: must be between 1 and %d", c.PruneMaxKeys, maxBatchKeys))
		}
	}
	return errors.Join(errs...)
}
