package node

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/faultnet"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/node/aae"
	"github.com/cairnkv/cairn/ring"
	"go.uber.org/zap"
)

var benchValue = make([]byte, 100)

// BenchmarkAAEIdleCycle measures anti-entropy on an idle cluster: three
// nodes holding the same keys (CAIRN_BENCH_AAE_KEYS of them, default
// 100,000) in 1,024 partitions, every replica identical. One op is one
// cycle: every node exchanges every partition it replicates with one peer,
// as its scheduler does once per Interval. It reports bytes and CPU per
// cycle and per exchange (CPU of the whole process, all three nodes).
func BenchmarkAAEIdleCycle(b *testing.B) {
	keys := 100_000
	if v := os.Getenv("CAIRN_BENCH_AAE_KEYS"); v != "" {
		var err error
		if keys, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	nodes := startIdleCluster(b, keys)
	ctx := context.Background()
	type job struct {
		a    *aae.AAE
		pair antientropy.Pair
	}
	var jobs []job
	for _, n := range nodes {
		r := n.ring()
		for p := range uint32(r.Partitions()) {
			primaries, _ := r.Preference(p, 3)
			for _, peer := range primaries {
				if peer != n.cfg.Name {
					jobs = append(jobs, job{n.aae, antientropy.Pair{Partition: p, Peer: peer}})
					break
				}
			}
		}
	}
	sent := func() (s uint64) {
		for _, n := range nodes {
			s += aaeStatus(b, n).BytesSent
		}
		return s
	}
	bytes0, cpu0 := sent(), cpuTime()
	b.ResetTimer()
	for range b.N {
		for _, j := range jobs {
			res := j.a.Exchange(ctx, j.pair)
			if res.Err != nil || res.Busy || res.Keys() != 0 {
				b.Fatalf("%v: err %v busy %v keys %d", j.pair, res.Err, res.Busy, res.Keys())
			}
		}
	}
	b.StopTimer()
	bytes, cpu := float64(sent()-bytes0)/float64(b.N), float64(cpuTime()-cpu0)/float64(b.N)
	b.ReportMetric(float64(len(jobs)), "exchanges/cycle")
	b.ReportMetric(bytes, "bytes/cycle")
	b.ReportMetric(bytes/float64(len(jobs)), "bytes/exchange")
	b.ReportMetric(cpu/1e6, "cpu-ms/cycle")
	b.ReportMetric(cpu/float64(len(jobs))/1e3, "cpu-µs/exchange")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startIdleCluster loads keys identical objects into three data
// directories through the store (trees kept by the hook and saved at
// close), then starts three nodes on them and waits for their first pass
// over every partition.
func startIdleCluster(b *testing.B, keys int) []*Node {
	b.Helper()
	obj := mustUpdate(dvv.Object{}.Update(nil, "bench.0", benchValue, false, 1))
	var cfgs []Config
	for i := 1; i <= 3; i++ {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("n%d", i)
		cfg.DataDir = b.TempDir()
		cfg.Listen, cfg.Gossip, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", ""
		cfg.RejoinInterval = 300 * time.Millisecond
		cfg.tuneMemberlist = faultnet.FastTimings
		cfg.NoSyncWrites = true
		cfg.AAE.Interval = time.Hour
		cfg.AAE.ExchangesPerSecond, cfg.AAE.ExchangeBurst = 1000, 64
		cfgs = append(cfgs, cfg)
	}
	start := time.Now()
	for _, cfg := range cfgs {
		o := store.DefaultOptions(cfg.DataDir, cfg.Name)
		o.NoSyncWrites = true
		aae.NewTrees(cfg.Partitions).Hook(&o)
		s, err := store.Open(o)
		if err != nil {
			b.Fatal(err)
		}
		r := ringOf(b, cfg.Partitions)
		for i := range keys {
			k := fmt.Appendf(nil, "key-%09d", i)
			if _, err := s.Modify(r(k), "b", k, false, func(dvv.Object, bool) (dvv.Object, bool, error) { return obj, true, nil }); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d keys into 3 stores in %v", keys, time.Since(start))
	var nodes []*Node
	for i, cfg := range cfgs {
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		cfg.Logger = zap.NewNop()
		cfg.Bootstrap = true
		n, err := Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		b.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, n := range nodes {
		for {
			st := aaeStatus(b, n)
			if st.Partitions == n.cfg.Partitions && st.NeverExchanged == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: first pass not done: %d of %d partitions assigned, %d never exchanged", n.cfg.Name, st.Partitions, n.cfg.Partitions, st.NeverExchanged)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if aaeStatus(b, n).Rebuilds != 0 {
			b.Fatalf("%s rebuilt trees: the saved ones should have loaded", n.cfg.Name)
		}
	}
	return nodes
}

// ringOf returns the partition function of the ring (it depends on Q
// only, not on the members).
func ringOf(b *testing.B, q int) func([]byte) uint32 {
	b.Helper()
	r, err := ring.New(q, []string{"n1", "n2", "n3"})
	if err != nil {
		b.Fatal(err)
	}
	return func(k []byte) uint32 { return r.KeyPartition("b", k) }
}
