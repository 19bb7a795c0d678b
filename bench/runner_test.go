package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeKV answers at once from memory and counts what it was asked. fail,
// when set, decides an error for the n-th call (from 1).
type fakeKV struct {
	mu        sync.Mutex
	calls     int
	gets      int
	puts      int
	withCtx   int // puts that carried a causal context
	baseOpts  int
	keys      []string // every key addressed, in order
	stored    map[string]bool
	errsGiven map[ErrorKind]int
	fail      func(n int) error
	block     func(n int) // called outside the lock before answering
}

func newFakeKV(baseWriteOpts int) *fakeKV {
	return &fakeKV{stored: map[string]bool{}, errsGiven: map[ErrorKind]int{}, baseOpts: baseWriteOpts}
}

func (f *fakeKV) begin(key []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.keys = append(f.keys, string(key))
	var err error
	if f.fail != nil {
		if err = f.fail(f.calls); err != nil {
			f.errsGiven[Classify(err)]++
		}
	}
	return f.calls, err
}

func (f *fakeKV) Get(_ context.Context, _ string, key []byte, _ ...client.Option) (*client.Object, error) {
	n, err := f.begin(key)
	if f.block != nil {
		f.block(n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if err != nil {
		return nil, err
	}
	return &client.Object{Found: f.stored[string(key)], Context: client.Context("ctx:" + string(key))}, nil
}

func (f *fakeKV) Put(_ context.Context, _ string, key, _ []byte, opts ...client.Option) (client.Context, error) {
	n, err := f.begin(key)
	if f.block != nil {
		f.block(n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if len(opts) > f.baseOpts {
		f.withCtx++
	}
	if err != nil {
		return nil, err
	}
	f.stored[string(key)] = true
	return client.Context("ctx:" + string(key)), nil
}

func testConfig() Config {
	c := DefaultConfig()
	c.Records = 100
	c.ValueSize = 16
	c.Concurrency = 4
	c.Duration = 0
	c.Ops = 1000
	c.Interval = 10 * time.Millisecond
	return c
}

func TestRunCountsAddUp(t *testing.T) {
	cfg := testConfig()
	cfg.Mix = Mix{Read: 4, Update: 3, Insert: 1, RMW: 2}
	cfg.Distribution = Uniform
	kv := newFakeKV(0)
	kv.fail = func(n int) error {
		switch {
		case n%97 == 0:
			return &client.QuorumError{Op: "put", Kind: "w", Need: 2, Got: 1, Of: 3}
		case n%89 == 0:
			return fmt.Errorf("get: %w", client.ErrTimeout)
		case n%83 == 0:
			return errors.New("connection reset by peer")
		}
		return nil
	}
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	require.Empty(t, res.Aborted)

	require.NotNil(t, res.Load)
	require.Equal(t, int64(100), res.Load.Requests)
	require.Equal(t, res.Load.Requests, res.Load.OK+res.Load.Errors)

	run := res.Run
	require.Equal(t, int64(1000), run.Requests, "--ops is exact")
	require.Equal(t, run.Requests, run.OK+run.Errors)
	var sum, errs int64
	byKind := map[string]int64{}
	for _, o := range run.Ops {
		var e int64
		for k, n := range o.Errors {
			e += n
			byKind[k] += n
		}
		require.Equal(t, o.Requests, o.OK+e)
		sum += o.Requests
		errs += e
	}
	require.Equal(t, run.Requests, sum)
	require.Equal(t, run.Errors, errs)

	// Every error the cluster returned is counted under its kind (an RMW
	// whose read failed sends no put, so calls and requests differ).
	for k, n := range res.Load.Ops["insert"].Errors {
		byKind[k] += n
	}
	require.Equal(t, int64(kv.errsGiven[KindQuorum]), byKind["quorum"])
	require.Equal(t, int64(kv.errsGiven[KindTimeout]), byKind["timeout"])
	require.Equal(t, int64(kv.errsGiven[KindOther]), byKind["other"])
	require.Positive(t, byKind["quorum"]+byKind["timeout"]+byKind["other"])

	// Gets: reads and RMWs; puts: updates, inserts and the RMWs whose read
	// succeeded.
	o := run.Ops
	require.Equal(t, int64(kv.gets), o["read"].Requests+o["rmw"].Requests)
	require.LessOrEqual(t, int64(kv.puts), 100+o["update"].Requests+o["insert"].Requests+o["rmw"].Requests)
	require.Positive(t, o["read"].OK)
	require.Positive(t, o["rmw"].OK)
}

func TestUpdatesCarryTheLastContext(t *testing.T) {
	cfg := testConfig()
	cfg.Mix = Mix{Update: 1}
	kv := newFakeKV(len(cfg.WriteOptions))
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	require.Zero(t, res.Run.Errors)
	// Every key was loaded and its context kept, so every update (and no
	// insert) passed one: an update replaces, it does not add a sibling.
	require.Equal(t, 1000, kv.withCtx)
	require.Equal(t, 1100, kv.puts)
}

func TestRunIsDeterministicWithOneWorker(t *testing.T) {
	keys := func(seed uint64) []string {
		cfg := testConfig()
		cfg.Concurrency = 1
		cfg.Ops = 300
		cfg.Seed = seed
		cfg.Mix = Mix{Read: 1, Update: 1}
		kv := newFakeKV(0)
		_, err := Run(t.Context(), kv, cfg)
		require.NoError(t, err)
		return kv.keys
	}
	require.Equal(t, keys(5), keys(5))
	require.NotEqual(t, keys(5), keys(6))
}

func TestLoadInsertsEveryRecordOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Mix = Mix{Read: 1}
	cfg.Ops = 1
	kv := newFakeKV(0)
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	require.Len(t, kv.stored, 100)
	require.Equal(t, int64(100), res.Load.Ops["insert"].OK)
	// The read found what the load wrote.
	require.Zero(t, res.Run.Ops["read"].NotFound)
}

func TestSkipLoadAssumesTheRecords(t *testing.T) {
	cfg := testConfig()
	cfg.Load = false
	cfg.Mix = Mix{Read: 1}
	kv := newFakeKV(0)
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	require.Nil(t, res.Load)
	// Nothing was loaded, so every read is a not-found success, not an
	// error.
	require.Equal(t, int64(1000), res.Run.Ops["read"].NotFound)
	require.Zero(t, res.Run.Errors)
}

func TestSkipLoadReadsTheContextsBeforeUpdating(t *testing.T) {
	cfg := testConfig()
	cfg.Load = false
	cfg.Mix = Mix{Update: 1}
	kv := newFakeKV(len(cfg.WriteOptions))
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	// Every existing key was read once, unmeasured, so every update of
	// the run replaced what was there instead of adding a sibling.
	require.Equal(t, int64(100), res.Primed)
	require.Equal(t, 100, kv.gets)
	require.Equal(t, int64(1000), res.Run.Ops["update"].Requests, "the reads are not part of the run")
	require.Equal(t, 1000, kv.withCtx)
}

// An open-loop run measures from the intended send time: when the first
// request stalls, the requests due during the stall carry the stall in
// their latency even though the cluster answered them at once.
func TestOpenLoopCountsTheStall(t *testing.T) {
	cfg := testConfig()
	cfg.Load = false
	cfg.Mix = Mix{Read: 1}
	cfg.Concurrency = 1
	cfg.Rate = 100 // one request due every 10ms
	cfg.Ops = 20   // all due within 200ms of the start
	const stall = 300 * time.Millisecond
	kv := newFakeKV(0)
	kv.block = func(n int) {
		if n == 1 {
			time.Sleep(stall) // the stall being measured, not a wait for a condition
		}
	}
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	lat := res.Run.Ops["read"].Latency
	// Request k (due at k*10ms) completed after the stall ended, at least
	// 300ms after the start, so each waited at least 300-190 = 110ms.
	require.GreaterOrEqual(t, lat.Min, int64(110_000))
	require.GreaterOrEqual(t, lat.P50, int64(110_000))
	require.GreaterOrEqual(t, lat.Max, stall.Microseconds())
}

func TestOpenLoopReportsBacklog(t *testing.T) {
	cfg := testConfig()
	cfg.Load = false
	cfg.Mix = Mix{Read: 1}
	cfg.Concurrency = 1
	cfg.Rate = 1000
	cfg.Ops = 0
	cfg.Duration = 100 * time.Millisecond
	kv := newFakeKV(0)
	kv.block = func(n int) {
		if n == 1 {
			time.Sleep(cfg.Duration) // the only request outlasts the run
		}
	}
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	// About 100 requests were due; one was sent. The rest are reported,
	// not silently dropped.
	require.Equal(t, int64(1), res.Run.Requests)
	require.Equal(t, int64(99), res.Run.Backlog)
}

func TestRunStopsWhenCancelled(t *testing.T) {
	cfg := testConfig()
	cfg.Ops = 0
	cfg.Duration = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	kv := newFakeKV(0)
	kv.block = func(n int) {
		if n == 500 {
			cancel()
		}
	}
	res, err := Run(ctx, kv, cfg)
	require.NoError(t, err)
	require.Equal(t, "interrupted", res.Aborted)
	require.NotNil(t, res.Run)
	require.Equal(t, res.Run.Requests, res.Run.OK+res.Run.Errors)
}

func TestRunRefusesBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Concurrency = 0
	kv := newFakeKV(0)
	_, err := Run(t.Context(), kv, cfg)
	require.ErrorContains(t, err, "concurrency")
	require.Zero(t, kv.calls, "a bad configuration sends nothing")
}

func TestWarmupIsNotMeasured(t *testing.T) {
	cfg := testConfig()
	cfg.Load = false
	cfg.Mix = Mix{Read: 1}
	cfg.Concurrency = 1
	cfg.Ops = 0
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 50 * time.Millisecond
	kv := newFakeKV(0)
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	require.Less(t, res.Run.Requests, int64(kv.calls), "requests sent during the warmup are not in the result")
	require.GreaterOrEqual(t, res.Run.Start.Sub(res.Start), cfg.Warmup, "measuring starts after the warmup")
}

func TestRunGivesUpWhenNothingSucceeds(t *testing.T) {
	unavailable := func(int) error { return client.ErrUnavailable }
	t.Run("load", func(t *testing.T) {
		cfg := testConfig()
		cfg.Records = 1 << 30 // would take hours of failures
		cfg.GiveUpAfter = 200 * time.Millisecond
		kv := newFakeKV(0)
		kv.fail = unavailable
		res, err := Run(t.Context(), kv, cfg)
		require.NoError(t, err)
		require.Contains(t, res.Aborted, "no request succeeded for 200ms during the load")
		require.Nil(t, res.Run, "the run does not start after a load that gave up")
		require.Positive(t, res.Load.Errors)
	})
	t.Run("run", func(t *testing.T) {
		cfg := testConfig()
		cfg.Load = false
		cfg.Mix = Mix{Read: 1}
		cfg.Ops = 0
		cfg.Duration = time.Hour
		cfg.GiveUpAfter = 200 * time.Millisecond
		kv := newFakeKV(0)
		kv.fail = unavailable
		res, err := Run(t.Context(), kv, cfg)
		require.NoError(t, err)
		require.Contains(t, res.Aborted, "no request succeeded for 200ms")
		require.Equal(t, res.Run.Requests, res.Run.Errors)
	})
	t.Run("priming", func(t *testing.T) {
		cfg := testConfig()
		cfg.Load = false
		cfg.Mix = Mix{Update: 1}
		cfg.Records = 1 << 30
		cfg.GiveUpAfter = 200 * time.Millisecond
		kv := newFakeKV(0)
		kv.fail = unavailable
		res, err := Run(t.Context(), kv, cfg)
		require.NoError(t, err)
		require.Contains(t, res.Aborted, "while reading the keys' contexts")
		require.Nil(t, res.Run)
	})
	t.Run("successes keep it going", func(t *testing.T) {
		cfg := testConfig()
		cfg.Load = false
		cfg.Mix = Mix{Read: 1}
		cfg.Concurrency = 1
		cfg.Ops = 0
		cfg.Duration = 300 * time.Millisecond
		cfg.GiveUpAfter = 100 * time.Millisecond
		kv := newFakeKV(0)
		kv.fail = func(n int) error {
			if n%2 == 0 {
				return client.ErrUnavailable
			}
			return nil
		}
		res, err := Run(t.Context(), kv, cfg)
		require.NoError(t, err)
		require.Empty(t, res.Aborted)
		require.Positive(t, res.Run.OK)
	})
}
