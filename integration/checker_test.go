package integration

// The lost-write checker: the set workload (checker_workload_test.go) runs
// against a five-node cluster while a nemesis kills, pauses and partitions
// it; then the cluster is healed, handoff is given a bounded time, and a
// final read with R=all must find every acknowledged element.
//
//   - TestLostWritesDocker: docker-compose.yml's cluster, when Docker is
//     usable (skipped with the reason otherwise).
//   - TestLostWritesDev: a `cairn dev` cluster, when Docker is not usable
//     (CAIRN_CHECKER_DEV=1 runs it anyway).
//   - TestLostWritesNegativeControl: the same additions with a resolver
//     that keeps one sibling (last-write-wins) must lose some, while the
//     union resolver under the same concurrency loses none: proof that
//     the checker can fail.
//
// Each writes its report as JSON to $CAIRN_CHECKER_OUT/<test>.json (a
// temporary directory when unset) and logs a summary. CAIRN_CHECKER_SEED
// replays a run's choice of nodes and keys. CAIRN_CHECKER_REQUIRE_PARTITIONS=1
// (which .ci/run sets when it runs as root with Docker) makes partition
// cycles mandatory instead of skipped with a reason.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// checkerTarget is a running cluster the checker drives.
type checkerTarget struct {
	kind  string
	nodes []string
	// addrs are the nodes' data addresses as this process reaches them.
	addrs map[string]string
	// chaosArgs select the cluster for scripts/chaos; nil when the
	// checker causes no faults.
	chaosArgs []string
	// routing: TokenAware where the nodes advertise addresses this
	// process can dial; SeedsOnly behind Docker's published ports.
	routing client.Routing
	// noPartition says why partitions cannot run, "" when they can.
	noPartition string
	// certsDir holds the clients' CA and user root's certificate; "" for
	// plain TCP.
	certsDir string
	// faults replaces the kill, pause and partition nemesis, and healthy
	// the wait for every node to see every node alive, when set (the
	// membership variant: its member set changes as it runs).
	faults  func(t *testing.T, h *history, rng *rand.Rand, cfg checkerConfig) ([]fault, map[string]int)
	healthy func(t *testing.T)
}

// checkerConfig is one run's shape.
type checkerConfig struct {
	keys, clients int
	resolver      client.Resolver
	resolverName  string
	timeout       time.Duration
	pause         time.Duration
	// cycles of each fault kind; hold is how long a fault lasts once the
	// cluster noticed it; settle how long the healed cluster runs the
	// workload before the next fault.
	cycles       int
	hold, settle time.Duration
	// minAcked is the least number of acknowledged additions a run must
	// make to mean anything.
	minAcked int
}

func positiveConfig() checkerConfig {
	return checkerConfig{keys: 4, clients: 8, resolver: unionResolver, resolverName: "union",
		timeout: 2 * time.Second, pause: 100 * time.Millisecond,
		cycles: 3, hold: 4 * time.Second, settle: 2 * time.Second, minAcked: 300}
}

// checkerReport is what a run writes to its JSON file.
type checkerReport struct {
	Test     string `json:"test"`
	Target   string `json:"target"`
	Resolver string `json:"resolver"`
	// Conflict is the bucket's conflict mode, when a run chose one.
	Conflict string      `json:"conflict,omitempty"`
	Seed     uint64      `json:"seed"`
	Clients  int         `json:"clients"`
	Total    keyReport   `json:"total"`
	Keys     []keyReport `json:"keys"`
	// Errors counts failed additions by outcome and error.
	Errors            map[string]int `json:"errors"`
	Faults            []fault        `json:"faults,omitempty"`
	FaultCycles       map[string]int `json:"fault_cycles,omitempty"`
	PartitionsSkipped string         `json:"partitions_skipped,omitempty"`
	// AckedDuringFaults: acknowledged additions that overlapped a fault
	// of each kind.
	AckedDuringFaults map[string]int     `json:"acknowledged_during_faults,omitempty"`
	WorkloadSeconds   float64            `json:"workload_s"`
	HandoffSeconds    float64            `json:"handoff_drained_s"`
	TotalSeconds      float64            `json:"total_s"`
	AAE               []client.AAEStatus `json:"aae,omitempty"`
}

func checkerSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("CAIRN_CHECKER_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "CAIRN_CHECKER_SEED")
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// newClients connects n clients, each with its own connections, and client
// i listing the nodes from the i-th on, so SeedsOnly clients spread over
// the nodes.
func newClients(t *testing.T, tg *checkerTarget, n int) []*client.Client {
	t.Helper()
	var out []*client.Client
	for i := range n {
		var seeds []string
		for j := range tg.nodes {
			seeds = append(seeds, tg.addrs[tg.nodes[(i+j)%len(tg.nodes)]])
		}
		// A paused node holds a dial until this; gossip takes 2 s or so
		// to mark it down.
		c, err := client.New(t.Context(), client.Config{Seeds: seeds, Routing: tg.routing, DialTimeout: 500 * time.Millisecond, TLS: clientsOf(t, tg.certsDir).clientConfig().TLS})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		out = append(out, c)
	}
	return out
}

func closeAll(clients []*client.Client) {
	for _, c := range clients {
		_ = c.Close()
	}
}

// allAlive waits until every node sees every node alive.
func (tg *checkerTarget) allAlive(t *testing.T) {
	t.Helper()
	if tg.healthy != nil {
		tg.healthy(t)
		return
	}
	want := map[string]bool{}
	for _, n := range tg.nodes {
		want[n] = true
	}
	for _, n := range tg.nodes {
		waitForView(t, clientsOf(t, tg.certsDir), tg.addrs[n], n, want)
	}
}

// sees waits until node via sees exactly the nodes in down as dead.
func (tg *checkerTarget) sees(t *testing.T, via string, down ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range tg.nodes {
		want[n] = !contains(down, n)
	}
	waitForView(t, clientsOf(t, tg.certsDir), tg.addrs[via], via, want)
}

// hintsPending sums the hints pending on every node but those in skip (a
// paused node would hold the call until its deadline). ok is false when a
// node did not answer.
func (tg *checkerTarget) hintsPending(t *testing.T, skip ...string) (pending int, ok bool) {
	ok = true
	for _, n := range tg.nodes {
		if contains(skip, n) {
			continue
		}
		c, err := client.New(t.Context(), client.Config{Seeds: []string{tg.addrs[n]}, Routing: client.SeedsOnly, DialTimeout: time.Second, TLS: clientsOf(t, tg.certsDir).clientConfig().TLS})
		if err != nil {
			ok = false
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		_, queues, err := c.Hints(ctx)
		cancel()
		_ = c.Close()
		if err != nil {
			ok = false
			continue
		}
		for _, q := range queues {
			pending += q.Pending
		}
	}
	return pending, ok
}

// pick returns k distinct nodes chosen by rng, in ring order.
func (tg *checkerTarget) pick(rng *rand.Rand, k int) (chosen, rest []string) {
	perm := rng.Perm(len(tg.nodes))
	in := map[int]bool{}
	for _, i := range perm[:k] {
		in[i] = true
	}
	for i, n := range tg.nodes {
		if in[i] {
			chosen = append(chosen, n)
		} else {
			rest = append(rest, n)
		}
	}
	return chosen, rest
}

// nemesis runs cfg.cycles cycles of kill -9 and restart, pause and resume,
// and a 2|3 partition and heal, each on nodes chosen by rng. Each fault
// lasts until the cluster noticed it (so requests meet a cluster that
// routes around it: fallbacks, hints) and then cfg.hold more; after each
// the cluster is healthy again, every node seeing every node, for
// cfg.settle. It runs on the test's goroutine, so a fault that cannot be
// caused or undone stops the test.
func (tg *checkerTarget) nemesis(t *testing.T, h *history, rng *rand.Rand, cfg checkerConfig) (faults []fault, cycles map[string]int) {
	t.Helper()
	cycles = map[string]int{}
	at := func() float64 { return h.since().Seconds() }
	wait := func(d time.Duration) {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-t.Context().Done():
		}
	}
	script := func(name string, args ...string) {
		chaos(t, name, append(append([]string{}, tg.chaosArgs...), args...)...)
	}
	wait(cfg.settle)
	for cycle := 1; cycle <= cfg.cycles; cycle++ {
		for _, kind := range []string{"kill", "pause", "partition"} {
			f := fault{Kind: kind}
			switch kind {
			case "kill", "pause":
				victim, others := tg.pick(rng, 1)
				f.Nodes = victim[0]
				f.Start = at()
				script(kind+".sh", victim[0])
				tg.sees(t, others[0], victim[0])
				wait(cfg.hold)
				f.HintsPending, _ = tg.hintsPending(t, victim[0])
				if kind == "kill" {
					script("restart.sh", victim[0])
				} else {
					script("resume.sh", victim[0])
				}
			case "partition":
				if tg.noPartition != "" {
					continue
				}
				a, b := tg.pick(rng, 2)
				sideA, sideB := strings.Join(a, ","), strings.Join(b, ",")
				f.Nodes = sideA + "|" + sideB
				f.Start = at()
				script("partition.sh", sideA, sideB)
				tg.sees(t, a[0], b...)
				tg.sees(t, b[0], a...)
				wait(cfg.hold)
				f.HintsPending, _ = tg.hintsPending(t)
				script("heal.sh")
			}
			f.End = at()
			faults = append(faults, f)
			cycles[kind]++
			tg.allAlive(t)
			t.Logf("cycle %d: %s, %d hints pending before it was undone; cluster healthy at %.1fs", cycle, f, f.HintsPending, at())
			wait(cfg.settle)
		}
	}
	return faults, cycles
}

// runChecker runs the workload under the nemesis, heals, waits for
// handoff, reads every key with R=all and reports. It asserts that no
// acknowledged element was lost, none appeared that was never sent, and
// the workload made progress through every kind of fault.
func runChecker(t *testing.T, tg *checkerTarget, cfg checkerConfig) checkerReport {
	t.Helper()
	began := time.Now()
	seed := checkerSeed(t)
	t.Logf("checker against %s: %d clients, %d keys, %d cycles of each fault, seed %d (CAIRN_CHECKER_SEED=%d replays the choices)",
		tg.kind, cfg.clients, cfg.keys, cfg.cycles, seed, seed)
	requirePartitions := os.Getenv("CAIRN_CHECKER_REQUIRE_PARTITIONS") == "1"
	if tg.noPartition != "" {
		if requirePartitions {
			t.Fatalf("CAIRN_CHECKER_REQUIRE_PARTITIONS=1, but partitions cannot run: %s", tg.noPartition)
		}
		t.Logf("PARTITION CYCLES WILL NOT RUN: %s; only kill and pause cycles will", tg.noPartition)
	}
	rep := checkerReport{Test: t.Name(), Target: tg.kind, Resolver: cfg.resolverName, Seed: seed, Clients: cfg.clients,
		PartitionsSkipped: tg.noPartition}
	var keys []string
	for i := range cfg.keys {
		keys = append(keys, fmt.Sprintf("set-%d", i))
	}

	// Goroutines the workload starts (its workers, its clients' loops)
	// must all be gone once it stops.
	leaks := goleak.IgnoreCurrent()
	clients := newClients(t, tg, cfg.clients)
	h := newHistory()
	w := workload{keys: keys, resolver: cfg.resolver, timeout: cfg.timeout, pause: cfg.pause}
	stop := w.start(h, clients, seed)
	t.Cleanup(stop)
	nemesis := tg.nemesis
	if tg.faults != nil {
		nemesis = tg.faults
	}
	faults, cycles := nemesis(t, h, rand.New(rand.NewPCG(seed, 0)), cfg)
	stop()
	closeAll(clients)
	// A nemesis that starts server processes leaves the harness's waiter
	// of each running: they belong to the cluster, not to the workload.
	goleak.VerifyNone(t, leaks, goleak.IgnoreAnyFunction("github.com/cairnkv/cairn/integration.(*cluster).start.func1"))
	rep.WorkloadSeconds = h.since().Seconds()
	rep.Faults, rep.FaultCycles = faults, cycles
	rep.AckedDuringFaults = ackedDuring(h, faults)
	rep.Errors = errorClasses(h)

	// Healed already (the nemesis undoes each fault); now let handoff
	// bring every hint home, within a bound.
	tg.allAlive(t)
	drainStart := time.Now()
	for {
		pending, ok := tg.hintsPending(t)
		if ok && pending == 0 {
			break
		}
		if time.Since(drainStart) > 2*time.Minute {
			t.Errorf("handoff did not drain within 2m: %d hints pending (every node answered: %v); reading anyway", pending, ok)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	rep.HandoffSeconds = time.Since(drainStart).Seconds()
	for _, n := range tg.nodes {
		c, err := client.New(t.Context(), client.Config{Seeds: []string{tg.addrs[n]}, Routing: client.SeedsOnly, TLS: clientsOf(t, tg.certsDir).clientConfig().TLS})
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		if s, err := c.AAEStatus(ctx, false); err == nil {
			rep.AAE = append(rep.AAE, *s)
		}
		cancel()
		_ = c.Close()
	}

	reader := newClients(t, tg, 1)[0]
	finals := readFinal(t, reader, checkerBucket, keys, time.Minute)
	_ = reader.Close()
	rep.Keys, rep.Total = analyze(h, finals, faults)
	rep.TotalSeconds = time.Since(began).Seconds()
	writeReport(t, rep)

	tot := rep.Total
	require.Zero(t, rep.Errors["not-sent corrupt"]+rep.Errors["indefinite corrupt"], "a stored set could not be read: %v", rep.Errors)
	require.Zero(t, tot.Phantom, "elements present that were never sent: %+v", rep.Keys)
	require.Zero(t, tot.Lost, "acknowledged elements lost: %+v", rep.Keys)
	require.GreaterOrEqual(t, tot.Acknowledged, cfg.minAcked, "the workload made too little progress to mean anything")
	for kind, n := range cycles {
		require.GreaterOrEqual(t, n, cfg.cycles, "%s cycles", kind)
		require.Positive(t, rep.AckedDuringFaults[kind], "no addition was acknowledged during a %s", kind)
	}
	// A nemesis of its own (the membership variant on processes, which
	// cannot be cut apart) runs no partitions; the standard one must.
	if requirePartitions && tg.faults == nil {
		require.Equal(t, cfg.cycles, cycles["partition"], "partition cycles")
	}
	return rep
}

// writeReport logs the summary and writes the report as JSON.
func writeReport(t *testing.T, rep checkerReport) {
	t.Helper()
	tot := rep.Total
	faults := "no faults"
	if len(rep.FaultCycles) > 0 {
		faults = fmt.Sprintf("fault cycles %v", rep.FaultCycles)
	}
	if rep.PartitionsSkipped != "" {
		faults += " (PARTITION CYCLES DID NOT RUN: " + rep.PartitionsSkipped + ")"
	}
	resolver := rep.Resolver + " resolver"
	if rep.Conflict != "" {
		resolver += ", " + rep.Conflict + " bucket"
	}
	t.Logf("checker %s (%s): attempted %d, acknowledged %d, lost %d, unacknowledged-but-present %d (of %d indefinite), not sent %d, phantom %d; %s; workload %.0fs, handoff drained in %.1fs, total %.0fs",
		rep.Target, resolver, tot.Attempted, tot.Acknowledged, tot.Lost, tot.UnacknowledgedPresent, tot.Indefinite, tot.NotSent, tot.Phantom,
		faults, rep.WorkloadSeconds, rep.HandoffSeconds, rep.TotalSeconds)
	for _, k := range rep.Keys {
		t.Logf("  %s: attempted %d, acknowledged %d, lost %d, unacknowledged-but-present %d, phantom %d; final set %d elements in %d siblings",
			k.Key, k.Attempted, k.Acknowledged, k.Lost, k.UnacknowledgedPresent, k.Phantom, k.FinalSize, k.FinalSiblings)
		for _, l := range k.LostElements {
			t.Logf("    lost %d (client %d, written %.1fs-%.1fs, faults then: %v)", l.Element, l.Client, l.Start, l.End, l.Faults)
		}
	}
	if len(rep.Errors) > 0 {
		t.Logf("  failed additions: %v", rep.Errors)
	}
	if len(rep.AckedDuringFaults) > 0 {
		t.Logf("  acknowledged during faults: %v", rep.AckedDuringFaults)
	}
	for _, a := range rep.AAE {
		t.Logf("  aae %s: %d/%d partitions in sync, %d exchanges, %d keys fetched, %d pushed", a.Node, a.InSync, a.Partitions, a.Exchanges, a.KeysFetched, a.KeysPushed)
	}
	dir := os.Getenv("CAIRN_CHECKER_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, strings.ReplaceAll(rep.Test, "/", "_")+".json")
	b, err := json.MarshalIndent(rep, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("report: %s", path)
}

// dockerUnusable says why the Docker checker cannot run here, "" when it
// can: the checks composeTool makes, without skipping.
func dockerUnusable() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "docker is not installed"
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return "docker is not usable here: " + firstLine(out)
	}
	if exec.Command("docker", "compose", "version").Run() != nil && exec.Command("docker-compose", "version").Run() != nil {
		return "neither `docker compose` nor `docker-compose` works"
	}
	return ""
}

func TestLostWritesDocker(t *testing.T) {
	d := startDockerCluster(t)
	runChecker(t, &checkerTarget{kind: "docker", nodes: d.names, addrs: d.addr, chaosArgs: d.target(),
		routing: client.SeedsOnly, noPartition: partitionUnsupported(false), certsDir: d.certsDir}, positiveConfig())
}

func TestLostWritesDev(t *testing.T) {
	if why := dockerUnusable(); why == "" && os.Getenv("CAIRN_CHECKER_DEV") != "1" {
		t.Skip("the checker runs against Docker here (TestLostWritesDocker); CAIRN_CHECKER_DEV=1 runs it against cairn dev as well")
	} else if why != "" {
		t.Logf("Docker is not usable (%s): the checker runs against cairn dev", why)
	}
	d := startDevCluster(t, 5)
	tg := &checkerTarget{kind: "dev", addrs: map[string]string{}, chaosArgs: []string{"--dev", d.dir},
		routing: client.TokenAware, noPartition: partitionUnsupported(true), certsDir: d.certsDir}
	for i := 1; i <= 5; i++ {
		n := fmt.Sprintf("n%d", i)
		tg.nodes = append(tg.nodes, n)
		tg.addrs[n] = d.addr(n)
	}
	runChecker(t, tg, positiveConfig())
}

// TestLostWritesNegativeControl proves the checker can fail. Four clients
// add to one key in lockstep rounds: in each, all four read before any
// writes (a barrier between Update's read and its put), so their four
// writes carry the same context and become four siblings. With a resolver
// that keeps one sibling (client.LastWriteWins), the next round's
// read-merge-write keeps one of them and its context covers all four:
// three acknowledged elements vanish each round. The same rounds with the
// union resolver, on another key of the same cluster, must lose nothing:
// the loss is the resolver's, not the cluster's or the checker's.
func TestLostWritesNegativeControl(t *testing.T) {
	c := startCluster(t, 3)
	tg := &checkerTarget{kind: "processes", addrs: map[string]string{}, routing: client.TokenAware, certsDir: c.certsDir}
	for _, p := range c.nodes {
		tg.nodes = append(tg.nodes, p.name)
		tg.addrs[p.name] = p.addr
	}
	const clients, rounds = 4, 10
	for _, tc := range []struct {
		name     string
		resolver client.Resolver
	}{{"lww", client.LastWriteWins}, {"union", unionResolver}} {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			leaks := goleak.IgnoreCurrent()
			cls := newClients(t, tg, clients)
			h := newHistory()
			key := "control-" + tc.name
			lockstep(t.Context(), h, cls, checkerBucket, key, rounds, tc.resolver, 5*time.Second)
			closeAll(cls)
			goleak.VerifyNone(t, leaks)
			reader := newClients(t, tg, 1)[0]
			finals := readFinal(t, reader, checkerBucket, []string{key}, 30*time.Second)
			_ = reader.Close()
			rep := checkerReport{Test: t.Name(), Target: tg.kind, Resolver: tc.name, Clients: clients, Errors: errorClasses(h),
				WorkloadSeconds: h.since().Seconds()}
			rep.Keys, rep.Total = analyze(h, finals, nil)
			rep.TotalSeconds = time.Since(began).Seconds()
			writeReport(t, rep)
			tot := rep.Total
			require.Zero(t, tot.Phantom)
			// Every round's writes are siblings, so each round but the
			// last leaves clients-1 acknowledged elements to the next
			// round's resolver.
			require.GreaterOrEqual(t, tot.Acknowledged, clients*rounds/2, "too few additions acknowledged to test anything")
			require.Greater(t, rep.Keys[0].FinalSiblings, 1, "the last round's writes must be siblings: the lockstep made them concurrent")
			if tc.name == "lww" {
				require.Positive(t, tot.Lost, "a resolver that keeps one sibling must lose acknowledged elements")
			} else {
				require.Zero(t, tot.Lost)
			}
		})
	}
}
