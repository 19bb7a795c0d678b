package transport

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkCall measures a real round trip on 127.0.0.1 through a Pool and
// a Server, both in this process: ns/op is wall time, cpu-ns/op the
// process's CPU time (user and system, both sides of the connection) per
// call, which is the figure a shared, noisy machine does not distort much.
//
//   - serial: one caller.
//   - parallel: 50 callers on 2 cores, a trivial handler.
//   - parallel-deep: the handler first runs through 16 KiB of stack, as a
//     request into pebble does.
//   - parallel-blocking: the handler waits 1 ms, as a coordinator waits for
//     its replicas; 50 callers need 50 requests served at once, so ns/op
//     near 20 µs means none waited for another.
func BenchmarkCall(b *testing.B) {
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) { benchCalls(b, secure) })
	}
}

// benchServer serves the test handler on 127.0.0.1, with TLS when secure,
// and returns a pool of clients for it.
func benchServer(b *testing.B, secure bool) (p *Pool, addr string) {
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	pcfg := cfg
	if secure {
		node, user := tlsMaterial(b)
		cfg.ServerTLS = node.ServerConfig()
		pcfg.ClientTLS = user.ClientConfig
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := NewServer(cfg, &testHandler{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	p = NewPool(pcfg)
	b.Cleanup(func() {
		_ = p.Close()
		_ = srv.Shutdown(context.Background())
		<-done
	})
	return p, ln.Addr().String()
}

func benchCalls(b *testing.B, secure bool) {
	p, addr := benchServer(b, secure)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := get(ctx, p, addr, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	parallel := func(key string) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			b.SetParallelism(25) // 50 callers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := get(ctx, p, addr, key); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
	}
	b.Run("parallel", parallel("k"))
	b.Run("parallel-deep", parallel("deep"))
	b.Run("parallel-blocking", parallel("sleep:1"))
}

// BenchmarkConnect measures a new connection and its first call: the
// TCP connect, the TLS handshake when secure (TLS 1.3, ECDSA P-256
// certificates both ways), the protocol's preamble and hello, and one
// round trip.
func BenchmarkConnect(b *testing.B) {
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			p, addr := benchServer(b, secure)
			ctx := context.Background()
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				p.Drain(addr)
				if _, err := get(ctx, p, addr, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU starts measuring the process's CPU time; the function it
// returns reports it per operation.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
