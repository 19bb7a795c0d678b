package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// convergeBound is the acceptance criterion: a node that missed
// 10,000 writes holds all of them within this long of its restart.
const convergeBound = 30 * time.Second

// TestConvergeAfterKillNine is the scenario of a node that returns: three
// real server processes with default settings (read repair and hinted
// handoff off, so that anti-entropy alone repairs), one killed with
// kill -9, 10,000 keys written with W=2 while it is down, then restarted.
// It must hold every key within convergeBound of its restart, judged by
// its anti-entropy trees (roots equal to its peers', every key counted)
// and a sample read replica by replica, never by reads that would repair.
//
// The servers are built without the race detector: the bound is a user's,
// and the detector slows every exchange several times over.
//
// CAIRN_CONVERGE_KEYS=N measures N missed keys instead and only logs the
// time (the bound is the for 10,000 keys).
func TestConvergeAfterKillNine(t *testing.T) {
	keys, bound := 10_000, convergeBound
	if v := os.Getenv("CAIRN_CONVERGE_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "CAIRN_CONVERGE_KEYS")
		keys, bound = n, 30*time.Minute
	}
	c := startClusterOf(t, plainBin(t), 3, "--read-repair=false", "--hinted-handoff=false")
	n1, n3 := c.node("n1"), c.node("n3")
	c.kill(n3)
	c.waitMembers(3, "n3")

	writeStart := time.Now()
	c.writeKeys([]string{n1.addr, c.node("n2").addr}, keys)
	t.Logf("wrote %d keys with W=2 while n3 was down, in %v", keys, time.Since(writeStart).Round(time.Millisecond))

	c.waitPortsFree(n3)
	c.start(n3)
	took, why := c.pollConverged(n3, int64(keys), bound)
	require.Empty(t, why, "n3 did not hold every key within %v of its restart", bound)
	t.Logf("n3 held all %d missed keys %v after its restart (bound %v)", keys, took.Round(100*time.Millisecond), bound)
	if s, err := c.aaeStatus(n3); err == nil {
		t.Logf("n3: %d exchanges, %d keys fetched, %d pushed, %d trees rebuilt", s.Exchanges, s.KeysFetched, s.KeysPushed, s.Rebuilds)
	}

	// A sample, copy by copy: `cairn debug replicas` reads each replica's
	// own copy and repairs nothing.
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		key := fmt.Sprintf("key-%d", rnd.IntN(keys))
		copies := c.replicas(n1.addr, "b", key)
		require.Len(t, copies, 3)
		require.True(t, identical(copies), "%s: %+v", key, copies)
	}
}

// writeKeys writes key-0 .. key-(keys-1) with W=2 through the given nodes,
// 32 writers, retrying a failed put a few times (a write that fails once
// in a busy machine's timeout is written again, not lost).
func (c *cluster) writeKeys(seeds []string, keys int) {
	t := c.t
	t.Helper()
	cl, err := client.New(t.Context(), c.seedsOnlyConfig(seeds...))
	require.NoError(t, err)
	defer cl.Close()
	var next atomic.Int64
	g, ctx := errgroup.WithContext(t.Context())
	for range 32 {
		g.Go(func() error {
			for i := next.Add(1) - 1; i < int64(keys); i = next.Add(1) - 1 {
				var err error
				for try := 0; try < 5; try++ {
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_, err = cl.Put(cctx, "b", fmt.Appendf(nil, "key-%d", i), fmt.Appendf(nil, "value-%d", i), client.W(2))
					cancel()
					if err == nil {
						break
					}
				}
				if err != nil {
					return fmt.Errorf("key-%d: %w", i, err)
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
}

// pollConverged polls, from the moment p was started, until every node's
// trees are ready with equal roots and p's trees count keys keys. It
// returns the time since the start of the poll, and why it gave up ("" if
// it did not).
func (c *cluster) pollConverged(p *proc, keys int64, bound time.Duration) (time.Duration, string) {
	c.t.Helper()
	start := time.Now()
	why := ""
	for time.Since(start) <= bound {
		if !c.running(p) {
			return time.Since(start), p.name + " exited"
		}
		ok, w, _ := c.rootsAgree()
		if ok {
			s, err := c.aaeStatus(p)
			held := int64(0)
			if err == nil {
				for _, tr := range s.Trees {
					held += tr.Keys
				}
			}
			if held == keys {
				return time.Since(start), ""
			}
			w = fmt.Sprintf("%s's trees hold %d keys of %d (%v)", p.name, held, keys, err)
		}
		why = w
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start), why
}

// waitPortsFree waits until p's data, gossip and admin ports can be bound:
// on a busy machine another process may hold one as an ephemeral port for
// a while after p was killed.
func (c *cluster) waitPortsFree(p *proc) {
	c.t.Helper()
	ports := []string{p.addr, p.admin}
	for i, a := range p.args {
		if a == "--gossip" && i+1 < len(p.args) {
			ports = append(ports, p.args[i+1])
		}
	}
	var busy error
	free := func() bool {
		for _, addr := range ports {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				busy = err
				return false
			}
			_ = ln.Close()
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !free() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s's ports stayed in use: %v", p.name, busy)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
