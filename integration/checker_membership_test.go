package integration

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

// TestLostWritesMembership is the lost-write checker with a nemesis that
// also changes the membership: on four server processes, a kill -9 and
// restart, a pause and resume, then a node joins while another is killed
// and restarted in the middle of the transfer, a node leaves while
// another is paused, and a killed node is replaced by a new one. The set
// workload runs throughout; the final read at R=all must find every
// acknowledged element, as in the other checker runs.
func TestLostWritesMembership(t *testing.T) {
	c := startClusterOf(t, plainBin(t), 4)
	m := &membershipNemesis{c: c}
	tg := &checkerTarget{kind: "processes, membership changes", addrs: map[string]string{}, routing: client.TokenAware,
		faults: m.run, healthy: m.healthy, tls: c.clientConfig().TLS}
	for _, p := range c.nodes {
		tg.nodes = append(tg.nodes, p.name)
		tg.addrs[p.name] = p.addr
	}
	m.tg = tg
	cfg := positiveConfig()
	cfg.cycles = 1
	rep := runChecker(t, tg, cfg)
	for _, kind := range []string{"kill", "pause", "join", "leave", "replace"} {
		require.Equal(t, 1, rep.FaultCycles[kind], "%s cycles", kind)
	}
}

// membershipNemesis drives the harness's processes directly: the chaos
// scripts know only a fixed set of nodes.
type membershipNemesis struct {
	c  *cluster
	tg *checkerTarget
	// gone are the members that left or were replaced: removed, and their
	// processes stopped.
	gone []string
	next int // the number of the next new node
}

// healthy waits until every running member sees every member alive but
// those gone.
func (m *membershipNemesis) healthy(t *testing.T) {
	t.Helper()
	m.c.waitMembers(len(m.tg.nodes)+len(m.gone), m.gone...)
}

// seenDown waits until the running members see victim down.
func (m *membershipNemesis) seenDown(victim string) {
	m.c.waitMembers(len(m.tg.nodes)+len(m.gone), append(slices.Clone(m.gone), victim)...)
}

// others returns the members but except, in a random order.
func (m *membershipNemesis) others(rng *rand.Rand, except ...string) []string {
	var out []string
	for _, n := range m.tg.nodes {
		if !slices.Contains(except, n) {
			out = append(out, n)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (m *membershipNemesis) restart(p *proc) {
	m.c.waitPortsFree(p)
	m.c.start(p)
	m.c.waitReady(p)
}

// killDuring kills victim with SIGKILL, holds it down for hold, and
// restarts it.
func (m *membershipNemesis) killDuring(victim *proc, hold time.Duration) {
	m.c.kill(victim)
	time.Sleep(hold)
	m.restart(victim)
}

func (m *membershipNemesis) pauseFor(victim *proc, hold time.Duration) {
	require.NoError(m.c.t, victim.cmd.Process.Signal(syscall.SIGSTOP))
	time.Sleep(hold)
	require.NoError(m.c.t, victim.cmd.Process.Signal(syscall.SIGCONT))
}

// newNode starts a new node that joins (without --bootstrap), with extra
// server arguments.
func (m *membershipNemesis) newNode(extra ...string) *proc {
	m.next++
	name := fmt.Sprintf("n%d", 4+m.next)
	p := m.c.joinNodesWith(extra, name)[0]
	m.tg.addrs[name] = p.addr
	return p
}

func (m *membershipNemesis) run(t *testing.T, h *history, rng *rand.Rand, cfg checkerConfig) ([]fault, map[string]int) {
	t.Helper()
	c := m.c
	cycles := map[string]int{}
	var faults []fault
	at := func() float64 { return h.since().Seconds() }
	record := func(f fault) {
		f.End = at()
		faults = append(faults, f)
		cycles[f.Kind]++
		m.healthy(t)
		t.Logf("%s; cluster healthy at %.1fs, members %v, gone %v", f, at(), m.tg.nodes, m.gone)
		time.Sleep(cfg.settle)
	}
	time.Sleep(cfg.settle)

	// kill -9 and restart.
	victim := m.others(rng)[0]
	f := fault{Kind: "kill", Nodes: victim, Start: at()}
	c.kill(c.node(victim))
	m.seenDown(victim)
	time.Sleep(cfg.hold)
	f.HintsPending, _ = m.tg.hintsPending(t, victim)
	m.restart(c.node(victim))
	record(f)

	// Pause and resume.
	victim = m.others(rng)[0]
	f = fault{Kind: "pause", Nodes: victim, Start: at()}
	require.NoError(t, c.node(victim).cmd.Process.Signal(syscall.SIGSTOP))
	m.seenDown(victim)
	time.Sleep(cfg.hold)
	f.HintsPending, _ = m.tg.hintsPending(t, victim)
	require.NoError(t, c.node(victim).cmd.Process.Signal(syscall.SIGCONT))
	record(f)

	// A join, with a current member killed and restarted in the middle of
	// the transfer.
	f = fault{Kind: "join", Start: at()}
	p := m.newNode()
	victim = m.others(rng)[0]
	f.Nodes = p.name + " (kill -9 " + victim + " during)"
	m.waitChanging()
	m.killDuring(c.node(victim), cfg.hold)
	m.tg.nodes = append(m.tg.nodes, p.name)
	c.waitChangeDone(len(m.tg.nodes)+len(m.gone), 5*time.Minute)
	record(f)

	// A leave, with another member paused in the middle.
	f = fault{Kind: "leave", Start: at()}
	picked := m.others(rng)
	leaver, paused := picked[0], picked[1]
	f.Nodes = leaver + " (pause " + paused + " during)"
	c.mustCLI("leave", "--addr", c.node(picked[2]).addr, leaver)
	m.waitChanging()
	m.pauseFor(c.node(paused), cfg.hold)
	select {
	case <-c.node(leaver).exit:
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s did not exit after leaving", leaver)
	}
	m.tg.nodes = slices.DeleteFunc(m.tg.nodes, func(n string) bool { return n == leaver })
	m.gone = append(m.gone, leaver)
	c.waitChangeDone(len(m.tg.nodes)+len(m.gone), 5*time.Minute)
	record(f)

	// A dead member replaced by a new node.
	victim = m.others(rng)[0]
	f = fault{Kind: "replace", Start: at()}
	c.kill(c.node(victim))
	m.seenDown(victim)
	p = m.newNode()
	f.Nodes = victim + " by " + p.name
	c.mustCLI("replace", "--addr", c.node(m.others(rng, victim)[0]).addr, victim, p.name)
	m.tg.nodes = append(slices.DeleteFunc(m.tg.nodes, func(n string) bool { return n == victim }), p.name)
	m.gone = append(m.gone, victim)
	c.waitChangeDone(len(m.tg.nodes)+len(m.gone), 5*time.Minute)
	record(f)
	return faults, cycles
}

// waitChanging waits until the first member reports a change in flight.
func (m *membershipNemesis) waitChanging() {
	c := m.c
	require.Eventually(c.t, func() bool {
		return c.transfers(c.node(m.tg.nodes[0])).Changing
	}, time.Minute, 50*time.Millisecond, "no change in flight")
}
