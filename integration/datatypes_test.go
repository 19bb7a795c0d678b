package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

// TestCounterUnderKillsAndPauses: 8 clients increment one counter 1,000
// times each while one replica is killed with SIGKILL and started again
// and another is paused (SIGSTOP) and resumed; a read at R=all then reads
// exactly 8,000.
//
// The bucket has n=5, so every node holds a copy and the clients'
// coordinators (n1 to n3, never faulted) coordinate every increment
// themselves: an increment fails only if its coordinator does, so none
// here is left unknown (an increment whose answer is lost may or may not
// have counted; docs/CLIENT.md), and every one must be acknowledged.
// n4 (killed) and n5 (paused) hold copies that miss increments while
// they are away and take the merged state again after.
// Then coordinator n1 is killed too, between increments, and 100 more go
// through it after its restart.
func TestCounterUnderKillsAndPauses(t *testing.T) {
	start := time.Now()
	c := startClusterOf(t, plainBin(t), 5)
	n1 := c.nodes[0].addr
	c.mustCLI("bucket", "create", "--addr", n1, "hits", "--datatype", "counter", "--n", "5")
	for _, p := range c.nodes {
		require.Eventually(t, func() bool {
			out, _, err := c.cli("bucket", "get", "--addr", p.addr, "hits", "-o", "json")
			var b struct{ Datatype string }
			return err == nil && json.Unmarshal(out, &b) == nil && b.Datatype == "counter"
		}, 20*time.Second, 100*time.Millisecond, "%s never learnt the bucket is a counter", p.name)
	}

	// The CLI: a negative N, text and JSON output, and plain reads refused.
	require.Equal(t, "-3\n", string(c.mustCLI("counter", "incr", "--addr", n1, "hits", "cli", "-3")))
	require.Equal(t, "7\n", string(c.mustCLI("counter", "incr", "--addr", n1, "hits", "cli", "10")))
	var got struct {
		Found bool
		Value int64
	}
	require.NoError(t, json.Unmarshal(c.mustCLI("counter", "get", "--addr", c.nodes[1].addr, "--r", "all", "-o", "json", "hits", "cli"), &got))
	require.Equal(t, int64(7), got.Value)
	require.True(t, got.Found)
	_, errOut, err := c.cli("get", "--addr", n1, "hits", "cli")
	require.Error(t, err)
	require.Contains(t, string(errOut), "invalid argument")
	require.Contains(t, string(errOut), "holds counters")
	_, errOut, err = c.cli("counter", "incr", "--addr", n1, "plain", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "not a counter bucket")

	const clients, each = 8, 1000
	coordinators := c.nodes[:3]
	killed, paused := c.node("n4"), c.node("n5")
	wstart := time.Now()
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		cl, err := client.New(t.Context(), c.seedsOnlyConfig(coordinators[i%len(coordinators)].addr))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cl.Close() })
		wg.Go(func() {
			for j := range each {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				_, err := cl.CounterIncr(ctx, "hits", []byte("total"), 1)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("client %d, increment %d: %w", i, j, err)
					return
				}
				acked.Add(1)
			}
		})
	}

	// The nemesis acts at points of progress, not of time: kill n4 a
	// quarter through, start it again and pause n5 halfway, resume n5 at
	// three quarters.
	waitAcked := func(n int64) {
		for acked.Load() < n && len(errs) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	total := int64(clients * each)
	faults := []string{}
	waitAcked(total / 4)
	c.kill(killed)
	faults = append(faults, fmt.Sprintf("kill -9 n4 at %d", acked.Load()))
	waitAcked(total / 2)
	c.start(killed)
	faults = append(faults, fmt.Sprintf("restart n4 at %d", acked.Load()))
	require.NoError(t, paused.cmd.Process.Signal(syscall.SIGSTOP))
	faults = append(faults, fmt.Sprintf("SIGSTOP n5 at %d", acked.Load()))
	waitAcked(3 * total / 4)
	require.NoError(t, paused.cmd.Process.Signal(syscall.SIGCONT))
	faults = append(faults, fmt.Sprintf("SIGCONT n5 at %d", acked.Load()))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, total, acked.Load())
	writing := time.Since(wstart)
	c.waitReady(killed)
	c.waitMembers(5)

	// Every acknowledged increment is on at least W=3 of the 5 copies, so
	// the merge of all five counts each exactly once.
	var final struct {
		Value    int64
		Replicas []string
	}
	require.Eventually(t, func() bool {
		out, _, err := c.cli("counter", "get", "--addr", c.nodes[3].addr, "--r", "all", "--timeout", "5s", "-o", "json", "hits", "total")
		return err == nil && json.Unmarshal(out, &final) == nil
	}, 60*time.Second, 200*time.Millisecond, "no read at R=all succeeded")
	require.Len(t, final.Replicas, 5)
	require.Equal(t, total, final.Value, "the read at R=all counts every acknowledged increment once")
	for _, p := range c.nodes {
		cl, err := client.New(t.Context(), c.seedsOnlyConfig(p.addr))
		require.NoError(t, err)
		got, err := cl.CounterGet(t.Context(), "hits", []byte("total"), client.R(client.All))
		_ = cl.Close()
		require.NoError(t, err)
		require.Equal(t, total, got.Value, "through %s", p.name)
	}

	// A coordinator killed with SIGKILL starts again under new actors (an
	// unclean start retires its old ones) and goes on counting from the
	// state its copy holds: nothing counted twice, nothing swallowed.
	coord := c.nodes[0]
	c.kill(coord)
	c.start(coord)
	c.waitReady(coord)
	c.waitMembers(5)
	cl, err := client.New(t.Context(), c.seedsOnlyConfig(coord.addr))
	require.NoError(t, err)
	defer cl.Close()
	const after = 100
	for range after {
		_, err := cl.CounterIncr(t.Context(), "hits", []byte("total"), 1)
		require.NoError(t, err)
	}
	got2, err := cl.CounterGet(t.Context(), "hits", []byte("total"), client.R(client.All))
	require.NoError(t, err)
	require.Equal(t, total+after, got2.Value, "increments after the coordinator's restart count once more each")
	t.Logf("counter: %d clients x %d increments, final value %d at R=all; faults: %s; increments took %v; "+
		"then kill -9 of coordinator n1 and %d more increments through it: %d; test %v",
		clients, each, final.Value, strings.Join(faults, ", "), writing.Round(time.Millisecond), after, got2.Value, time.Since(start).Round(time.Millisecond))
}

// TestSetConcurrentAddsAndRemoves: clients on every node of a real
// cluster remove elements with the context of a read taken before any of
// the concurrent adds, while others add some of those elements again and
// new ones. Every element whose add that read did not observe stays,
// every one the read saw, a remove named and nobody added again is gone.
func TestSetConcurrentAddsAndRemoves(t *testing.T) {
	c := startClusterOf(t, plainBin(t), 3)
	n1 := c.nodes[0].addr
	c.mustCLI("bucket", "create", "--addr", n1, "tags", "--datatype", "set")
	for _, p := range c.nodes {
		require.Eventually(t, func() bool {
			out, _, err := c.cli("bucket", "get", "--addr", p.addr, "tags", "-o", "json")
			var b struct{ Datatype string }
			return err == nil && json.Unmarshal(out, &b) == nil && b.Datatype == "set"
		}, 20*time.Second, 100*time.Millisecond, "%s never learnt the bucket is a set", p.name)
	}
	// The CLI: add, get (one element per line), remove after a read.
	c.mustCLI("set", "add", "--addr", n1, "tags", "cli", "b")
	c.mustCLI("set", "add", "--addr", c.nodes[1].addr, "tags", "cli", "a")
	require.Equal(t, "a\nb\n", string(c.mustCLI("set", "get", "--addr", c.nodes[2].addr, "--r", "all", "tags", "cli")))
	c.mustCLI("set", "remove", "--addr", c.nodes[2].addr, "--r", "all", "tags", "cli", "a")
	var got struct {
		Found    bool
		Elements []string
	}
	require.NoError(t, json.Unmarshal(c.mustCLI("set", "get", "--addr", n1, "--r", "all", "-o", "json", "tags", "cli"), &got))
	require.Equal(t, []string{"b"}, got.Elements)
	_, errOut, err := c.cli("put", "--addr", n1, "tags", "cli", "v")
	require.Error(t, err)
	require.Contains(t, string(errOut), "holds sets")

	clients := make([]*client.Client, len(c.nodes))
	for i, p := range c.nodes {
		cl, err := client.New(t.Context(), c.seedsOnlyConfig(p.addr))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cl.Close() })
		clients[i] = cl
	}
	ctx := t.Context()
	key := []byte("doc")
	name := func(i int) []byte { return fmt.Appendf(nil, "e%03d", i) }
	const n = 300 // e000-e099 removed; e050-e099 and e200-e299 added concurrently; e100-e199 untouched
	for i := range 200 {
		_, err := clients[i%3].SetAdd(ctx, "tags", key, name(i))
		require.NoError(t, err)
	}
	seen, err := clients[0].SetGet(ctx, "tags", key, client.R(client.All))
	require.NoError(t, err)
	require.Len(t, seen.Elements, 200)
	var wg sync.WaitGroup
	for w, cl := range clients {
		wg.Go(func() {
			for i := w; i < 100; i += 3 {
				if _, err := cl.SetRemove(ctx, "tags", key, name(i), client.Causal(seen.Context)); err != nil {
					t.Errorf("remove %s: %v", name(i), err)
				}
			}
		})
		wg.Go(func() {
			for i := 50 + w; i < n; i += 3 {
				if i >= 100 && i < 200 {
					continue
				}
				if _, err := cl.SetAdd(ctx, "tags", key, name(i)); err != nil {
					t.Errorf("add %s: %v", name(i), err)
				}
			}
		})
	}
	wg.Wait()
	var want []string
	for i := 50; i < n; i++ {
		want = append(want, string(name(i)))
	}
	for i, cl := range clients {
		got, err := cl.SetGet(ctx, "tags", key, client.R(client.All))
		require.NoError(t, err)
		var els []string
		for _, e := range got.Elements {
			els = append(els, string(e))
		}
		require.Equal(t, want, els, "through %s", c.nodes[i].name)
	}
	t.Logf("set: %d elements kept of %d added, 50 removed with a read's context, 50 re-added concurrently with their removal", len(want), n)
}
