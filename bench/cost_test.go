package bench

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func counters(node string, cpu, sent, recv float64) NodeCounters {
	return NodeCounters{Node: node, Admin: node + ":7301", CPUSeconds: cpu, BytesSent: sent, BytesReceived: recv, HasCPU: true, HasBytes: true}
}

func TestCostChargesTheGrowthToTheRequests(t *testing.T) {
	before := []NodeCounters{counters("n1", 10, 1000, 500), counters("n2", 20, 2000, 900)}
	after := []NodeCounters{counters("n2", 20.5, 4000, 1900), counters("n1", 11, 3000, 1500)}
	c := costOf(before, after, 1000)
	require.Empty(t, c.Unavailable)
	require.NotNil(t, c.CPU)
	require.InDelta(t, 1.5, c.CPU.Seconds, 1e-9)
	require.InDelta(t, 1500, c.CPU.MicrosPerOp, 1e-6) // 1.5 s over 1000 requests
	require.NotNil(t, c.Traffic)
	require.InDelta(t, 4000, c.Traffic.BytesSent, 1e-9)
	require.InDelta(t, 4, c.Traffic.BytesSentPerOp, 1e-9)
	require.InDelta(t, 2000, c.Traffic.BytesReceived, 1e-9)
	require.InDelta(t, 2, c.Traffic.BytesReceivedPerOp, 1e-9)
	require.Len(t, c.Nodes, 2)
	require.Equal(t, "n2", c.Nodes[0].Node)
	require.InDelta(t, 0.5, *c.Nodes[0].CPUSeconds, 1e-9)
	require.InDelta(t, 2000, *c.Nodes[0].BytesSent, 1e-9)
	require.Contains(t, c.summary(), "1500 µs of node CPU and 4 B sent per request (2 nodes")
}

func TestCostLeavesOutWhatItCannotKnow(t *testing.T) {
	n1, n2 := counters("n1", 10, 1000, 500), counters("n2", 20, 2000, 900)
	noBytes := n2
	noBytes.HasBytes = false
	noCPU := n2
	noCPU.HasCPU = false
	for _, tc := range []struct {
		name          string
		before, after []NodeCounters
		requests      int64
		cpu, traffic  bool
		why           string
	}{
		{"a node that exports no byte counters", []NodeCounters{n1, n2}, []NodeCounters{n1, noBytes}, 10, true, false, "n2 exports no cairn_transport_bytes_sent_total"},
		{"a node that exports no CPU time", []NodeCounters{n1, noCPU}, []NodeCounters{n1, n2}, 10, false, true, "n2 exports no process_cpu_seconds_total"},
		{"a node that restarted", []NodeCounters{n1, n2}, []NodeCounters{n1, counters("n2", 1, 10, 10)}, 10, false, false, "n2's CPU time went back"},
		{"a node missing at the start", []NodeCounters{n1}, []NodeCounters{n1, n2}, 10, false, false, "n2 was not read when measuring started"},
		{"a node missing at the end", []NodeCounters{n1, n2}, []NodeCounters{n1}, 10, false, false, "n2 could not be read when the run ended"},
		{"no request", []NodeCounters{n1, n2}, []NodeCounters{n1, n2}, 0, false, false, "no request was sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := costOf(tc.before, tc.after, tc.requests)
			require.Equal(t, tc.cpu, c.CPU != nil, "cpu: %+v", c.CPU)
			require.Equal(t, tc.traffic, c.Traffic != nil, "traffic: %+v", c.Traffic)
			require.Contains(t, c.Unavailable, tc.why)
			require.Contains(t, c.summary(), tc.why)
		})
	}
}

// fakeMeter hands out readings that grow by one CPU second and 1000 bytes
// sent each time, and remembers when it was read.
type fakeMeter struct {
	mu    sync.Mutex
	reads []time.Time
	err   error
}

func (m *fakeMeter) Read(context.Context) ([]NodeCounters, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	m.reads = append(m.reads, time.Now())
	k := float64(len(m.reads))
	return []NodeCounters{counters("n1", k, 1000*k, 10*k)}, nil
}

func TestRunReadsTheMeterAroundTheMeasuredRunOnly(t *testing.T) {
	cfg := testConfig()
	cfg.Mix = Mix{Read: 1}
	m := &fakeMeter{}
	cfg.Meter = m
	res, err := Run(t.Context(), newFakeKV(0), cfg)
	require.NoError(t, err)
	require.Len(t, m.reads, 2, "once when measuring starts, once at the end; never for the load")
	require.Nil(t, res.Load.Cost)
	c := res.Run.Cost
	require.NotNil(t, c)
	require.Empty(t, c.Unavailable)
	require.InDelta(t, 1e6/float64(res.Run.Requests), c.CPU.MicrosPerOp, 1e-6)
	require.InDelta(t, 1000/float64(res.Run.Requests), c.Traffic.BytesSentPerOp, 1e-9)
	require.False(t, m.reads[0].After(res.Run.Start), "read before the first measured request")
	require.False(t, m.reads[1].Before(res.Run.End), "read after the last one")

	require.NotNil(t, c.HarnessCPU, "the harness's own CPU is measured too")
	require.InDelta(t, c.HarnessCPU.Seconds*1e6/float64(res.Run.Requests), c.HarnessCPU.MicrosPerOp, 1e-6)

	var b bytes.Buffer
	require.NoError(t, res.WriteSummary(&b))
	require.Contains(t, b.String(), "µs of node CPU and 1 B sent per request (1 node:")
	require.Contains(t, b.String(), "; the harness itself: ")
}

func TestCostCountsTheHarnessCPUOfTheMeasuredSpan(t *testing.T) {
	probe := startCostProbe(t.Context(), &fakeMeter{}, time.Now())
	// Burn 30 ms of this process's CPU: the probe must charge at least
	// that to the requests.
	start, ok := processCPU()
	require.True(t, ok)
	for {
		now, _ := processCPU()
		if now-start >= 30*time.Millisecond {
			break
		}
	}
	c := probe.finish(t.Context(), 100)
	require.NotNil(t, c.HarnessCPU)
	require.GreaterOrEqual(t, c.HarnessCPU.Seconds, 0.030)
	require.InDelta(t, c.HarnessCPU.Seconds*1e6/100, c.HarnessCPU.MicrosPerOp, 1e-6)

	// Without requests there is nothing to charge it to.
	probe = startCostProbe(t.Context(), &fakeMeter{}, time.Now())
	require.Nil(t, probe.finish(t.Context(), 0).HarnessCPU)

	// When the nodes cannot be read at the end, the harness's own figure
	// still stands.
	m := &fakeMeter{}
	probe = startCostProbe(t.Context(), m, time.Now())
	m.mu.Lock()
	m.err = errors.New("admin port gone")
	m.mu.Unlock()
	c = probe.finish(t.Context(), 10)
	require.Nil(t, c.CPU)
	require.NotNil(t, c.HarnessCPU)
	require.Contains(t, c.summary(), "admin port gone; the harness itself: ")
}

func TestRunReadsTheMeterWhenTheWarmupEnds(t *testing.T) {
	cfg := testConfig()
	cfg.Load = false
	cfg.Mix = Mix{Read: 1}
	cfg.Concurrency = 1
	cfg.Ops = 0
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 50 * time.Millisecond
	m := &fakeMeter{}
	cfg.Meter = m
	res, err := Run(t.Context(), newFakeKV(0), cfg)
	require.NoError(t, err)
	require.Len(t, m.reads, 2)
	require.False(t, m.reads[0].Before(res.Run.Start), "the warmup is not charged")
	require.NotNil(t, res.Run.Cost.CPU)
}

func TestRunSaysWhyThereIsNoCost(t *testing.T) {
	cfg := testConfig()
	cfg.Load = false
	res, err := Run(t.Context(), newFakeKV(0), cfg)
	require.NoError(t, err)
	require.Nil(t, res.Run.Cost.CPU)
	require.Contains(t, res.Run.Cost.Unavailable, "no meter")

	cfg.Meter = &fakeMeter{err: errors.New("n2: connection refused")}
	res, err = Run(t.Context(), newFakeKV(0), cfg)
	require.NoError(t, err, "a meter that fails does not fail the run")
	require.Nil(t, res.Run.Cost.CPU)
	require.Nil(t, res.Run.Cost.Traffic)
	require.Contains(t, res.Run.Cost.Unavailable, "n2: connection refused")
	var b bytes.Buffer
	require.NoError(t, res.WriteSummary(&b))
	require.Contains(t, b.String(), "cost: not measured: could not read the nodes' counters when measuring started: n2: connection refused")
}

func TestReachableAdmin(t *testing.T) {
	require.Equal(t, "10.0.0.5:7301", reachableAdmin("0.0.0.0:7301", "10.0.0.5:7101"))
	require.Equal(t, "[fd00::5]:7301", reachableAdmin("[::]:7301", "[fd00::5]:7101"))
	require.Equal(t, "10.0.0.5:7301", reachableAdmin(":7301", "10.0.0.5:7101"))
	require.Equal(t, "127.0.0.1:7301", reachableAdmin("127.0.0.1:7301", "10.0.0.5:7101"))
}
