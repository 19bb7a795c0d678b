package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want ErrorKind
	}{
		{fmt.Errorf("get: %w", client.ErrTimeout), KindTimeout},
		{context.DeadlineExceeded, KindTimeout},
		{&client.QuorumError{Op: "put", Kind: "w", Need: 2, Got: 1, Of: 3}, KindQuorum},
		{&client.QuorumError{Op: "put", Kind: "w", Need: 2, Got: 1, Of: 3, TimedOut: true}, KindTimeout},
		{fmt.Errorf("%w: no seed", client.ErrUnavailable), KindUnavailable},
		{client.ErrOverloaded, KindOverloaded},
		{fmt.Errorf("%w: r > n", client.ErrInvalidArgument), KindInvalidArgument},
		{errors.New("connection reset"), KindOther},
		{client.ErrProtocol, KindOther},
	} {
		require.Equal(t, tc.want, Classify(tc.err), "%v", tc.err)
	}
}

// The merge of per-worker histograms must equal one histogram of every
// value: the percentiles of the run cannot depend on how requests were
// spread over workers.
func TestCollectorMergesWorkers(t *testing.T) {
	ops := []Op{Read, Update}
	col := newCollector(ops, 3)
	whole := newOpStats()
	r := seeded(11)
	for i := range 30_000 {
		lat := time.Duration(r.ExpFloat64()*2000) * time.Microsecond
		col.recs[i%3].record(Read, lat, i%10 == 0, nil)
		whole.record(lat, i%10 == 0, nil)
	}
	col.recs[1].record(Update, time.Millisecond, false, client.ErrOverloaded)
	col.recs[2].record(Update, time.Millisecond, false, fmt.Errorf("put: %w", client.ErrTimeout))
	col.recs[2].record(Update, 3*time.Millisecond, false, nil)

	interval := col.collect()
	for _, w := range []window{interval, col.total} {
		require.True(t, w[Read].hist.Equals(whole.hist), "merged histogram differs from the whole")
		require.Equal(t, int64(3000), w[Read].notFound)
		require.Equal(t, int64(1), w[Update].ok())
		require.Equal(t, int64(1), w[Update].errs[KindOverloaded])
		require.Equal(t, int64(1), w[Update].errs[KindTimeout])
		require.Contains(t, w[Update].samples[KindTimeout], "put: timeout")
	}

	// The next interval starts empty; the totals keep accumulating.
	col.recs[0].record(Read, time.Millisecond, false, nil)
	next := col.collect()
	require.Equal(t, int64(1), next[Read].ok())
	require.Zero(t, next[Update].errors())
	require.Equal(t, int64(30_001), col.total[Read].ok())
	require.Equal(t, int64(2), col.total[Update].errors())
}

func TestOpResultPercentiles(t *testing.T) {
	s := newOpStats()
	for i := 1; i <= 1000; i++ {
		s.record(time.Duration(i)*time.Millisecond, false, nil)
	}
	s.record(0, false, errors.New("boom"))
	s.record(2*time.Hour, false, nil) // beyond the histogram: clamped, not lost
	o := opResult(s, 2)
	require.Equal(t, int64(1002), o.Requests)
	require.Equal(t, int64(1001), o.OK)
	require.Equal(t, int64(1), o.Errors["other"])
	require.Equal(t, "boom", o.Samples["other"])
	require.Len(t, o.Errors, int(numKinds), "every kind is present, zeros included")
	require.InDelta(t, 500.5, o.OpsPerSec, 1e-9)
	within := func(want, got int64) { require.InDelta(t, want, got, float64(want)/500, "want %d got %d", want, got) }
	within(501_000, o.Latency.P50)
	within(951_000, o.Latency.P95)
	within(991_000, o.Latency.P99)
	within(1_000_000, o.Latency.P999)
	within(histMaxMicros, o.Latency.Max)
}
