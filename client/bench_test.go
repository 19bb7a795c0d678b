package client_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"golang.org/x/sync/errgroup"
)

// BenchmarkRouting compares token-aware routing with round robin, 50
// goroutines sharing one client, against a running cluster:
//
//	go build -o /tmp/cairnc ./cmd/cairn
//	/tmp/cairnc dev --nodes 3 --data /tmp/clientdev --base-port 7700 &
//	CAIRN_BENCH_ADDRS=127.0.0.1:7701,127.0.0.1:7702,127.0.0.1:7703 \
//	  go test -run '^$' -bench Routing -benchtime 20000x ./client
//
// It reports throughput and the p50 and p99 latency of each call.
func BenchmarkRouting(b *testing.B) {
	addrs := os.Getenv("CAIRN_BENCH_ADDRS")
	if addrs == "" {
		b.Skip("CAIRN_BENCH_ADDRS is not set: start a cluster (cairn dev) and name its data addresses, comma-separated")
	}
	const clients = 50
	seeds := strings.Split(addrs, ",")
	for _, routing := range []client.Routing{client.TokenAware, client.RoundRobin} {
		c, err := client.New(context.Background(), client.Config{Seeds: seeds, Routing: routing})
		if err != nil {
			b.Fatal(err)
		}
		run := fmt.Sprintf("%d", time.Now().UnixNano())
		var next atomic.Uint64
		b.Run(routing.String()+"/put", func(b *testing.B) {
			measure(b, clients, func(ctx context.Context, _ *rand.Rand) error {
				key := fmt.Appendf(nil, "%s-%d", run, next.Add(1))
				_, err := c.Put(ctx, "bench", key, []byte("value-of-about-thirty-two-bytes"))
				return err
			})
		})
		written := next.Load()
		if written == 0 {
			written = 1
		}
		b.Run(routing.String()+"/get", func(b *testing.B) {
			measure(b, clients, func(ctx context.Context, rng *rand.Rand) error {
				key := fmt.Appendf(nil, "%s-%d", run, 1+rng.Uint64N(written))
				_, err := c.Get(ctx, "bench", key)
				return err
			})
		})
		b.Logf("%v: %+v", routing, c.Stats())
		_ = c.Close()
	}
}

// measure runs b.N calls over the given number of goroutines and reports
// calls per second and latency percentiles.
func measure(b *testing.B, goroutines int, call func(context.Context, *rand.Rand) error) {
	var mu sync.Mutex
	var all []time.Duration
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	var g errgroup.Group
	for w := range goroutines {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(runtime.NumGoroutine())))
			var mine []time.Duration
			for left.Add(-1) >= 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				t0 := time.Now()
				err := call(ctx, rng)
				mine = append(mine, time.Since(t0))
				cancel()
				if err != nil {
					return err
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds())
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
