package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

// BenchmarkDevCluster measures put and get throughput and latency from 50
// concurrent callers against real `cairn dev` clusters of 1 and 3 nodes
// (N=3, R=W=2 where there are 3), built without the race detector. Run:
//
//	go test -run '^$' -bench DevCluster -benchtime 20000x ./integration
func BenchmarkDevCluster(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "cairn")
	build := exec.Command("go", "build", "-o", bin, "github.com/cairnkv/cairn/cmd/cairn")
	build.Stderr = os.Stderr
	require.NoError(b, build.Run())
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			seeds, certsDir := startDev(b, bin, nodes)
			var clients []*client.Client
			for _, s := range seeds {
				c, err := client.New(context.Background(), devConfig(certsDir, s))
				require.NoError(b, err)
				defer c.Close()
				clients = append(clients, c)
			}
			value := make([]byte, 100)
			const keys = 10000
			for _, op := range []string{"put", "get"} {
				b.Run(op, func(b *testing.B) {
					lat := runConcurrent(b, 50, func(worker, i int) error {
						c := clients[worker%len(clients)]
						key := []byte("key-" + strconv.Itoa(rand.IntN(keys)))
						var err error
						if op == "put" {
							_, err = c.Put(context.Background(), "bench", key, value)
						} else {
							_, err = c.Get(context.Background(), "bench", key)
						}
						return err
					})
					report(b, lat)
				})
			}
		})
	}
}

// runConcurrent runs b.N operations spread over workers goroutines and
// returns every operation's latency.
func runConcurrent(b *testing.B, workers int, op func(worker, i int) error) []time.Duration {
	lat := make([]time.Duration, b.N)
	var next sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	counter := make(chan int, b.N)
	for i := range b.N {
		counter <- i
	}
	close(counter)
	b.ResetTimer()
	for w := range workers {
		next.Add(1)
		go func() {
			defer next.Done()
			for i := range counter {
				start := time.Now()
				err := op(w, i)
				lat[i] = time.Since(start)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	next.Wait()
	b.StopTimer()
	require.NoError(b, firstErr)
	return lat
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
}

// devConfig is user root's client configuration for one seed of a
// secure `cairn dev`.
func devConfig(certsDir, seed string) client.Config {
	cfg := client.Config{Seeds: []string{seed}}
	cfg.TLS, _ = client.TLSFromCertsDir(certsDir, "root") // not there yet: the dial fails, and is retried
	return cfg
}

// startDev runs `cairn dev` and returns the nodes' data addresses and
// the clients' certificates directory; the cluster stops when the
// benchmark ends.
func startDev(b *testing.B, bin string, nodes int) ([]string, string) {
	base := freeBase(b, nodes)
	dir := b.TempDir()
	cmd := exec.Command(bin, "dev", "--nodes", strconv.Itoa(nodes), "--data", dir, "--base-port", strconv.Itoa(base))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var seeds []string
	for i := 1; i <= nodes; i++ {
		seeds = append(seeds, fmt.Sprintf("127.0.0.1:%d", base+i))
	}
	require.Eventually(b, func() bool {
		for _, s := range seeds {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c, err := client.New(ctx, devConfig(filepath.Join(dir, "certs"), s))
			if err != nil {
				cancel()
				return false
			}
			ms, err := c.Members(ctx)
			cancel()
			_ = c.Close()
			alive := 0
			for _, m := range ms {
				if m.Alive {
					alive++
				}
			}
			if err != nil || alive != nodes {
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond)
	return seeds, filepath.Join(dir, "certs")
}
