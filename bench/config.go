package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cairnkv/cairn/client"
)

// KV is what the harness needs from a cluster; *client.Client has it.
type KV interface {
	Get(ctx context.Context, bucket string, key []byte, opts ...client.Option) (*client.Object, error)
	Put(ctx context.Context, bucket string, key, value []byte, opts ...client.Option) (client.Context, error)
}

// Config describes a run. Start from DefaultConfig; Validate reports every
// problem at once.
type Config struct {
	// Workload names the YCSB workload the mix and distribution came from,
	// for the record; empty for a custom mix.
	Workload string
	// Mix weighs the operations.
	Mix Mix
	// Distribution picks the keys of reads, updates and read-modify-writes.
	Distribution Distribution
	// Records is how many keys the load phase inserts and the run addresses.
	Records int
	// Bucket holds every key the run writes.
	Bucket string
	// ValueSize is the size of every written value, in bytes.
	ValueSize int
	// Concurrency is the number of workers, each with at most one request
	// in flight.
	Concurrency int
	// Duration bounds the run phase (after Warmup). Zero: only Ops does.
	Duration time.Duration
	// Ops bounds the run phase by requests sent. Zero: only Duration does.
	Ops int64
	// Rate, in requests per second across all workers, makes the run open
	// loop; zero runs it closed loop.
	Rate float64
	// Warmup runs the workload this long before measuring starts.
	Warmup time.Duration
	// Load inserts the Records keys before the run (closed loop, the same
	// workers). Without it the keys are assumed to be there already.
	Load bool
	// Seed seeds every worker's generator (worker i uses Seed+i), so two
	// runs with one seed draw the same keys and operations.
	Seed uint64
	// ReadOptions and WriteOptions are passed to every Get and every Put.
	ReadOptions, WriteOptions []client.Option
	// RequestTimeout bounds each request on the harness's side; zero leaves
	// it to the client.
	RequestTimeout time.Duration
	// GiveUpAfter ends a phase, and the run with it (Aborted set), when no
	// request has succeeded for this long: a cluster that is gone would
	// otherwise keep a load of many records failing, one request timeout
	// at a time, for hours. Zero never gives up.
	GiveUpAfter time.Duration
	// Meter reads the nodes' counters (CPU time, bytes) when measuring
	// starts and when the run ends, for the run's cost per request; nil
	// leaves the cost unmeasured, and the result says so.
	Meter Meter
	// Interval is the reporting interval: one progress line and one point
	// of the time series each. Default 1s.
	Interval time.Duration
	// Progress receives the progress lines; nil prints none.
	Progress io.Writer
	// ProgressInPlace rewrites one line (for a terminal) instead of
	// printing one per interval.
	ProgressInPlace bool
	// Settings is recorded in the result as given, with the fields the
	// harness knows filled in (Targets and Consistency come from the
	// caller).
	Settings Settings
}

// DefaultConfig is workload A, closed loop, 16 workers for 30 seconds
// over 10,000 records of 1,000 bytes (YCSB's record size), loaded first.
func DefaultConfig() Config {
	w := Workloads["a"]
	return Config{
		Workload:     w.Name,
		Mix:          w.Mix,
		Distribution: w.Distribution,
		Records:      10_000,
		Bucket:       "bench",
		ValueSize:    1000,
		Concurrency:  16,
		Duration:     30 * time.Second,
		Load:         true,
		Seed:         1,
		Interval:     time.Second,
		GiveUpAfter:  time.Minute,
	}
}

// Limits that catch mistakes (a value size in bits, a missing unit) rather
// than constrain real runs.
const (
	maxRecords     = 1 << 31
	maxValueSize   = 64 << 20
	maxConcurrency = 100_000
)

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Mix.total() <= 0 {
		bad("mix: at least one operation needs a positive weight")
	}
	for op, w := range c.Mix {
		if w < 0 {
			bad("mix: weight of %s is negative", Op(op))
		}
	}
	if _, err := ParseDistribution(string(c.Distribution)); err != nil {
		bad("%w", err)
	}
	if c.Records < 1 || c.Records > maxRecords {
		bad("records %d: must be from 1 to %d", c.Records, maxRecords)
	}
	if c.Bucket == "" || len(c.Bucket) > 255 {
		bad("bucket %q: must be 1 to 255 bytes", c.Bucket)
	}
	if c.ValueSize < 0 || c.ValueSize > maxValueSize {
		bad("value size %d: must be from 0 to %d bytes", c.ValueSize, maxValueSize)
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		bad("concurrency %d: must be from 1 to %d", c.Concurrency, maxConcurrency)
	}
	if c.Duration < 0 || c.Ops < 0 {
		bad("duration and ops must not be negative")
	}
	if c.Duration == 0 && c.Ops == 0 {
		bad("give a duration or an op count, or the run never ends")
	}
	if c.Rate < 0 || c.Rate > 1e9 {
		bad("rate %g: must be from 0 (closed loop) to 1e9 requests per second", c.Rate)
	}
	if c.GiveUpAfter < 0 {
		bad("give-up-after %v: must not be negative (0 never gives up)", c.GiveUpAfter)
	}
	if c.Warmup < 0 {
		bad("warmup %v: must not be negative", c.Warmup)
	}
	if c.Warmup > 0 && c.Duration == 0 {
		bad("warmup needs a duration: an op-count run has no time to warm up in")
	}
	if c.RequestTimeout < 0 {
		bad("request timeout %v: must not be negative", c.RequestTimeout)
	}
	if c.Interval < 10*time.Millisecond {
		bad("interval %v: must be at least 10ms", c.Interval)
	}
	return errors.Join(errs...)
}

// settings fills in what the harness knows about the run.
func (c Config) settings() Settings {
	s := c.Settings
	s.Workload = c.Workload
	s.Mix = c.Mix.String()
	s.Distribution = c.Distribution
	s.Records = c.Records
	s.Bucket = c.Bucket
	s.ValueSize = c.ValueSize
	s.Concurrency = c.Concurrency
	if c.Duration > 0 {
		s.Duration = c.Duration.String()
	}
	s.Ops = c.Ops
	s.Rate = c.Rate
	if c.Warmup > 0 {
		s.Warmup = c.Warmup.String()
	}
	s.Load = c.Load
	s.Seed = c.Seed
	return s
}
