package integration

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWritesFailOverWithinTheRequest kills two nodes of a five-node `cairn
// dev` with SIGKILL and writes at once with `--w 3`: three nodes are
// alive, so every sloppy put must succeed, without waiting for gossip to
// declare the two dead. A target that refuses the connection is replaced
// by the next healthy fallback within the same request. A strict put
// (`--no-sloppy`) that needs a dead primary still fails, naming the counts.
func TestWritesFailOverWithinTheRequest(t *testing.T) {
	// Anti-entropy off: an exchange that finds a dead node marks it down
	// for two seconds, and puts planned in that time leave it out without
	// a failover, so whether the puts exercised the failover would depend
	// on when the exchanges ran.
	d := startDevCluster(t, 5, "--aae=false")
	// A cluster that has been serving: connections between every pair of
	// nodes exist, and are what the kill breaks.
	for i := range 20 {
		d.mustCLI("put", "--addr", d.addr("n1"), "--w", "all", "b", fmt.Sprintf("warm-%d", i), "v")
	}
	for _, name := range []string{"n2", "n4"} {
		pid := d.pid(name)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		require.Eventually(t, func() bool { return !processAlive(pid) }, 10*time.Second, 5*time.Millisecond)
	}
	killed := time.Now()

	// 30 puts through the CLI as a user's scripts would send them, five
	// at a time, through the three live nodes.
	const puts, workers = 30, 5
	var mu sync.Mutex
	var done []time.Duration
	var failures []string
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < puts; i += workers {
				via := []string{"n1", "n3", "n5"}[i%3]
				_, errOut, err := d.cli("put", "--addr", d.addr(via), "--w", "3", "b", fmt.Sprintf("after-kill-%d", i), "v")
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("put %d via %s: %v: %s", i, via, err, errOut))
				} else {
					done = append(done, time.Since(killed))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Empty(t, failures, "every sloppy w=3 put must succeed with three nodes alive")
	first, last := done[0], done[0]
	for _, e := range done {
		first, last = min(first, e), max(last, e)
	}
	t.Logf("after the kill: first successful w=3 put at %v, all %d at %v", first.Round(time.Millisecond), puts, last.Round(time.Millisecond))

	// The dead targets were replaced inside the requests, by the
	// coordinators, not by a membership change.
	var failovers float64
	for _, name := range []string{"n1", "n3", "n5"} {
		failovers += d.metricSum(adminAddr(d, name), "cairn_request_failovers_total")
	}
	require.Positive(t, failovers, "no request failed over: the puts did not exercise the failover")

	// Strict quorum: fallbacks do not count, so a key with a dead primary
	// cannot reach w=3.
	strict := 0
	for i := 0; strict < 3; i++ {
		key := fmt.Sprintf("strict-%d", i)
		if !containsAny(primariesOf(t, 5, key), []string{"n2", "n4"}) {
			continue
		}
		strict++
		_, errOut, err := d.cli("put", "--addr", d.addr("n1"), "--no-sloppy", "--w", "3", "b", key, "v")
		require.Error(t, err, "strict w=3 put of %s with a dead primary succeeded", key)
		require.Contains(t, string(errOut), "need w=3, got", "the error names the counts")
	}
}

// adminAddr is a dev node's admin address (base+200+i).
func adminAddr(d *devCluster, name string) string {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "n"))
	require.NoError(d.t, err)
	return fmt.Sprintf("127.0.0.1:%d", d.base+200+i)
}

// metricSum adds up every sample of a metric, whatever its labels.
func (c *cluster) metricSum(admin, name string) float64 {
	t := c.t
	t.Helper()
	body, err := c.metrics(admin)
	require.NoError(t, err)
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(t, err, line)
		sum += v
	}
	return sum
}
