package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// hostileBin is the server binary the hostile-client tests run: the plain
// build, or CAIRN_HOSTILE_BIN, so that the same scenario measures another
// build (the figures before and after a change).
func hostileBin(t *testing.T) string {
	if b := os.Getenv("CAIRN_HOSTILE_BIN"); b != "" {
		return b
	}
	return plainBin(t)
}

// procStatus reads a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rawHello opens a connection to addr from the local IP from (any when
// empty) and, when hello is set, completes the TLS handshake (with tlsCfg,
// when the node speaks TLS) and sends the preamble and a client's hello,
// reading nothing back.
func rawHello(ctx context.Context, addr, from string, hello bool, tlsCfg *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || !hello {
		return c, err
	}
	if tlsCfg != nil {
		cfg := tlsCfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
		tc := tls.Client(c, cfg)
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		c = tc
	}
	frame, err := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 1, wire.TypeHello, wire.Hello{Cluster: "cairn"}, 4<<10)
	if err == nil {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(frame)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// latencies is what a well-behaved client saw.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	errs []error
}

func (l *latencies) add(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, err)
		return
	}
	l.d = append(l.d, d)
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// wellBehaved puts and gets small values through cfg's seed alone until ctx
// ends, one request at a time, recording each request's latency.
func wellBehaved(ctx context.Context, t *testing.T, cfg client.Config, l *latencies) {
	cfg.Cluster, cfg.Routing = "cairn", client.SeedsOnly
	c, err := client.New(ctx, cfg)
	require.NoError(t, err)
	defer c.Close()
	for i := 0; ctx.Err() == nil; i++ {
		key := []byte(fmt.Sprintf("good-%d", i%200))
		start := time.Now()
		_, err := c.Put(ctx, "good", key, []byte(strings.Repeat("v", 100)))
		if ctx.Err() != nil {
			return
		}
		l.add(time.Since(start), err)
		start = time.Now()
		_, err = c.Get(ctx, "good", key)
		if ctx.Err() != nil {
			return
		}
		l.add(time.Since(start), err)
	}
}

// slowReaderRSSBound is the bound on a node's memory while a
// client pipelines 3,000 gets of a 1 MiB value and reads nothing.
const slowReaderRSSBound = 512 << 20

// TestHostileSlowReader: a raw connection to n1 says hello, pipelines
// 3,000 gets of a 1 MiB value and never reads an answer, while a
// well-behaved client keeps putting and getting small values through n1
// on connections of its own. n1's memory (its peak RSS, VmHWM) must stay
// under 512 MiB, and every request of the well-behaved client succeed.
// Its latencies are logged, not asserted: the machine running the tests
// is shared and noisy, and latency belongs in the benchmark.
func TestHostileSlowReader(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("measures the node's memory in /proc/PID/status, which only Linux has")
	}
	c := startClusterOf(t, hostileBin(t), 3)
	n1 := c.node("n1")
	ctx := t.Context()
	seeds := []string{n1.addr, c.node("n2").addr, c.node("n3").addr}
	cfg := c.clientConfig(seeds...)
	cfg.Cluster = "cairn"
	sdk, err := client.New(ctx, cfg)
	require.NoError(t, err)
	defer sdk.Close()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	_, err = sdk.Put(ctx, "hostile", []byte("big"), big, client.W(client.All))
	require.NoError(t, err)
	obj, err := sdk.Get(ctx, "hostile", []byte("big"))
	require.NoError(t, err)
	require.Len(t, obj.Siblings, 1)

	pid := n1.cmd.Process.Pid
	before, err := procStatus(pid, "VmHWM")
	require.NoError(t, err)

	// The well-behaved client, warmed up first.
	var good latencies
	warm, stopWarm := context.WithTimeout(ctx, time.Second)
	wellBehaved(warm, t, c.clientConfig(n1.addr), &latencies{})
	stopWarm()

	attackCtx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	var peak atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for attackCtx.Err() == nil {
			if rss, err := procStatus(pid, "VmRSS"); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	wg.Go(func() { wellBehaved(attackCtx, t, c.clientConfig(n1.addr), &good) })

	// The slow reader.
	conn, err := rawHello(ctx, n1.addr, "", true, c.clientConfig().TLS)
	require.NoError(t, err)
	defer conn.Close()
	var gets []byte
	for i := range 3000 {
		gets, err = wire.AppendFrame(gets, uint64(i+2), wire.TypeGet,
			wire.GetReq{Bucket: "hostile", Key: []byte("big"), Opts: wire.DefaultOptions()}, 1<<20)
		require.NoError(t, err)
	}
	wg.Go(func() {
		// The node may stop reading before all of it is sent: the write
		// then waits in TCP until the connection closes.
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, _ = conn.Write(gets)
	})
	const attack = 8 * time.Second
	select {
	case <-time.After(attack):
	case <-ctx.Done():
	}
	stopAttack()
	_ = conn.Close()
	wg.Wait()

	hwm, err := procStatus(pid, "VmHWM")
	require.NoError(t, err)
	p50, p99, p999 := good.quantile(0.5), good.quantile(0.99), good.quantile(0.999)
	t.Logf("slow reader, 3,000 pipelined gets of 1 MiB never read, for %v: n1 peak RSS %d MiB (VmHWM; %d MiB before the attack, VmRSS sampled peak %d MiB)",
		attack, hwm>>20, before>>20, peak.Load()>>20)
	t.Logf("well-behaved client on n1 meanwhile: %d requests, %d errors, p50 %v, p99 %v, p99.9 %v",
		len(good.d), len(good.errs), p50, p99, p999)
	t.Logf("n1 refusals: %s", c.refusalCounts(n1.admin))
	for _, err := range good.errs[:min(5, len(good.errs))] {
		t.Logf("well-behaved client error: %v", err)
	}
	require.Less(t, hwm, int64(slowReaderRSSBound), "n1's peak RSS")
	require.Empty(t, good.errs, "every request of the well-behaved client succeeds")
	require.NotEmpty(t, good.d)

	// n1 still serves the large value afterwards.
	obj, err = sdk.Get(ctx, "hostile", []byte("big"))
	require.NoError(t, err)
	require.Equal(t, big, obj.Siblings[0].Value)
}

// refusalCounts lists a node's connection events that are refusals or
// pauses, from its /metrics.
func (c *cluster) refusalCounts(admin string) string {
	body, err := c.metrics(admin)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "cairn_connection_events_total{") || strings.HasPrefix(line, "cairn_refusals_total{") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "; ")
}

// idleConns is how many idle connections the idle-flood test opens.
const idleConns = 5000

// raiseFileLimit makes room for n more descriptors in this process (the
// servers it starts inherit the limit), or skips the test saying why.
func raiseFileLimit(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("needs %d file descriptors; the hard limit is %d (raise it with ulimit -Hn)", n, lim.Max)
	}
	old := lim.Cur
	lim.Cur = n
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	t.Cleanup(func() {
		lim.Cur = old
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}

// TestHostileIdleConnections: 5,000 connections opened to n1 from one
// address (127.0.0.2, so that the test's own clients, on 127.0.0.1, are
// another source), the first 4,000 saying a client's hello, the last
// 1,000 nothing, all then idle. Meanwhile n3 is restarted, so that it must connect to n1
// afresh. The cluster's nodes must keep talking (every node sees every
// member alive, a put at W=all succeeds coordinated by n3 and by n1) and
// a new client must connect to n1 and work.
func TestHostileIdleConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connects from 127.0.0.2, which only Linux routes to loopback without configuration")
	}
	raiseFileLimit(t, 3*idleConns)
	c := startClusterOf(t, hostileBin(t), 3)
	n1, n3 := c.node("n1"), c.node("n3")
	ctx := t.Context()

	var mu sync.Mutex
	var idle []net.Conn
	defer func() {
		for _, conn := range idle {
			_ = conn.Close()
		}
	}()
	tlsCfg := c.clientConfig().TLS
	var dialErrs atomic.Int64
	var firstErr atomic.Pointer[error]
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for i := range idleConns {
		g.Go(func() error {
			conn, err := rawHello(gctx, n1.addr, "127.0.0.2", i < idleConns*4/5, tlsCfg)
			if err != nil {
				dialErrs.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				return nil
			}
			mu.Lock()
			idle = append(idle, conn)
			mu.Unlock()
			return nil
		})
	}
	require.NoError(t, g.Wait())
	if e := firstErr.Load(); e != nil && errors.Is(*e, syscall.EADDRNOTAVAIL) {
		t.Fatalf("cannot connect from 127.0.0.2: %v", *e)
	}
	t.Logf("opened %d idle connections to n1 from 127.0.0.2 (%d dials failed)", len(idle), dialErrs.Load())
	require.GreaterOrEqual(t, len(idle), idleConns*9/10)

	// n3 comes back and must reach n1 through the flood.
	c.kill(n3)
	c.waitPortsFree(n3)
	c.start(n3)
	c.waitReady(n3)
	c.waitMembers(3) // every node, through a new CLI connection each

	for _, p := range []*proc{n3, n1} {
		cfg := c.clientConfig(p.addr)
		cfg.Cluster, cfg.Routing = "cairn", client.SeedsOnly
		sdk, err := client.New(ctx, cfg)
		require.NoError(t, err, "a new client connects to %s", p.name)
		for i := range 20 {
			key := []byte(fmt.Sprintf("%s-%d", p.name, i))
			_, err := sdk.Put(ctx, "idle", key, []byte("v"), client.W(client.All))
			require.NoError(t, err, "a put at W=all coordinated by %s", p.name)
			obj, err := sdk.Get(ctx, "idle", key, client.R(client.All))
			require.NoError(t, err)
			require.Equal(t, "v", string(obj.Siblings[0].Value))
		}
		require.NoError(t, sdk.Close())
	}
	t.Logf("n1 refusals: %s", c.refusalCounts(n1.admin))
}
