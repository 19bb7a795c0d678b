package integration

// The lost-write checker's last-write-wins run: the set workload of
// checker_workload_test.go on a bucket created with --conflict lww, next
// to the same workload on a siblings bucket of the same cluster at the
// same time. Under concurrent writers LWW must lose acknowledged
// additions, as Jepsen measured for Riak's LWW buckets: two clients that
// read the same set and each add an element write two values, and the
// bucket keeps the later one only. The run reports how many it lost and
// does not fail for losing them; the siblings bucket, under the same load,
// must lose none. A few lockstep rounds on the LWW bucket (every client
// reads before any writes) lose by construction: they keep the run's
// proof that LWW loses from depending on how the free-running clients
// happened to overlap on a busy machine.

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const lwwCheckerBucket = "checker-lww"

// lwwRun is one of the run's workloads and what became of it.
type lwwRun struct {
	name, bucket, conflict string
	keys                   []string
	h                      *history
	clients                []*client.Client
	stop                   func()
}

func TestLostWritesLWW(t *testing.T) {
	began := time.Now()
	c := startCluster(t, 3)
	tg := &checkerTarget{kind: "processes", addrs: map[string]string{}, routing: client.TokenAware, certsDir: c.certsDir}
	for _, p := range c.nodes {
		tg.nodes = append(tg.nodes, p.name)
		tg.addrs[p.name] = p.addr
	}
	c.mustCLI("bucket", "create", "--addr", c.nodes[0].addr, lwwCheckerBucket, "--conflict", "lww")
	for _, p := range c.nodes {
		require.Eventually(t, func() bool {
			out, _, err := c.cli("bucket", "get", "--addr", p.addr, lwwCheckerBucket, "-o", "json")
			var b struct{ Conflict string }
			return err == nil && json.Unmarshal(out, &b) == nil && b.Conflict == "lww"
		}, 20*time.Second, 100*time.Millisecond, "%s never learnt the bucket is last-write-wins", p.name)
	}

	// Four clients on two keys each side: every addition rewrites the
	// whole set, so additions to one key overlap often.
	const clients, duration = 4, 20 * time.Second
	seed := checkerSeed(t)
	t.Logf("seed %d (CAIRN_CHECKER_SEED=%d replays the choice of keys)", seed, seed)
	leaks := goleak.IgnoreCurrent()
	runs := []*lwwRun{
		{name: "lww", bucket: lwwCheckerBucket, conflict: "lww", keys: []string{"lww-set-0", "lww-set-1"}},
		{name: "siblings", bucket: checkerBucket, conflict: "siblings", keys: []string{"sib-set-0", "sib-set-1"}},
	}
	for _, r := range runs {
		r.h = newHistory()
		r.clients = newClients(t, tg, clients)
		w := workload{bucket: r.bucket, keys: r.keys, resolver: unionResolver, timeout: 2 * time.Second, pause: 20 * time.Millisecond}
		r.stop = w.start(r.h, r.clients, seed)
		t.Cleanup(r.stop)
	}
	timer := time.NewTimer(duration)
	select {
	case <-timer.C:
	case <-t.Context().Done():
	}
	timer.Stop()
	for _, r := range runs {
		r.stop()
		closeAll(r.clients)
	}

	lock := &lwwRun{name: "lww-lockstep", bucket: lwwCheckerBucket, conflict: "lww", keys: []string{"lww-lockstep"}, h: newHistory()}
	cls := newClients(t, tg, clients)
	lockstep(t.Context(), lock.h, cls, lock.bucket, lock.keys[0], 3, unionResolver, 5*time.Second)
	closeAll(cls)
	goleak.VerifyNone(t, leaks)
	runs = append(runs, lock)

	reader := newClients(t, tg, 1)[0]
	reports := map[string]checkerReport{}
	for _, r := range runs {
		finals := readFinal(t, reader, r.bucket, r.keys, 30*time.Second)
		rep := checkerReport{Test: t.Name() + "/" + r.name, Target: tg.kind, Resolver: "union", Conflict: r.conflict,
			Seed: seed, Clients: clients, Errors: errorClasses(r.h), WorkloadSeconds: r.h.since().Seconds()}
		rep.Keys, rep.Total = analyze(r.h, finals, nil)
		rep.TotalSeconds = time.Since(began).Seconds()
		writeReport(t, rep)
		reports[r.name] = rep
		tot := rep.Total
		require.Zero(t, tot.Phantom, "%s: elements present that were never sent", r.name)
		require.Zero(t, rep.Errors["not-sent corrupt"]+rep.Errors["indefinite corrupt"], "%s: a stored set could not be read: %v", r.name, rep.Errors)
		if r.conflict == "lww" {
			for _, k := range rep.Keys {
				require.LessOrEqual(t, k.FinalSiblings, 1, "%s: a last-write-wins key holds one value", k.Key)
			}
		}
	}
	_ = reader.Close()

	lww, sib := reports["lww"].Total, reports["siblings"].Total
	require.GreaterOrEqual(t, sib.Acknowledged, 100, "the siblings workload made too little progress to mean anything")
	require.GreaterOrEqual(t, lww.Acknowledged, 100, "the last-write-wins workload made too little progress to mean anything")
	require.Zero(t, sib.Lost, "the siblings bucket must lose no acknowledged element")
	require.Positive(t, reports["lww-lockstep"].Total.Lost, "concurrent writes with one context: last-write-wins keeps one of them")
	t.Logf("LAST-WRITE-WINS LOST %d of %d acknowledged additions (%.1f%%) under %d concurrent writers in %v; the siblings bucket lost %d of %d; lockstep rounds lost %d of %d",
		lww.Lost, lww.Acknowledged, percent(lww.Lost, lww.Acknowledged), clients, duration, sib.Lost, sib.Acknowledged,
		reports["lww-lockstep"].Total.Lost, reports["lww-lockstep"].Total.Acknowledged)
}

func percent(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
