package membership

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxJoinsPerRound bounds the joins of one rejoin round beyond the seeds. A
// push/pull carries memberlist's whole node list, so joining every member of
// a large cluster after a wide outage would cost O(S^2); one answered join
// per side is enough to merge two sides, and the sample rotates each round.
const maxJoinsPerRound = 8

// maxParallelJoins bounds the joins of one round that run at once: each may
// hold a connection for up to memberlist's TCPTimeout when a peer's packets
// vanish, and running them one by one would let a few such peers stretch a
// round far past RejoinInterval.
const maxParallelJoins = 4

var errStopped = errors.New("membership is shutting down")

// rejoinLoop performs the initial join (closing joined when it is done), then
// joins the rejoin targets every RejoinInterval until Shutdown.
//
// memberlist marks a peer it cannot reach dead and, after
// GossipToTheDeadTime, forgets it and never contacts it again. Two sides of a
// partition that outlasts that have each forgotten the other and would stay
// apart after the network heals. Joining the ring members that are not alive
// is a push/pull with each of them: it tells them this side exists (they
// refute the death they are told about) and merges the ring state both ways.
func (m *Membership) rejoinLoop(joined chan<- struct{}) {
	defer m.wg.Done()
	// Besides the seeds, a restarted node tries members its persisted state
	// knows, so it finds the cluster even when the seeds are down.
	if targets := m.sample(m.rejoinTargets()); len(targets) > 0 {
		if ok := m.joinAll(targets); ok == 0 {
			m.logger.Printf("[WARN] membership: reached none of %v; running alone and retrying every %v", targets, m.cfg.rejoinInterval())
		}
	}
	close(joined)
	t := time.NewTicker(m.cfg.rejoinInterval())
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if targets := m.sample(m.rejoinTargets()); len(targets) > 0 {
				m.joinAll(targets)
			}
		}
	}
}

// sample keeps the seeds among targets and at most maxJoinsPerRound of the
// others, chosen at random.
func (m *Membership) sample(targets []string) []string {
	var seeds, others []string
	for _, t := range targets {
		if slices.Contains(m.cfg.Join, t) {
			seeds = append(seeds, t)
		} else {
			others = append(others, t)
		}
	}
	if len(others) > maxJoinsPerRound {
		rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
		others = others[:maxJoinsPerRound]
	}
	return append(seeds, others...)
}

// rejoinTargets lists the gossip addresses worth a push/pull now: seeds that
// are not a live peer, members of the ring state (removed ones aside) that
// memberlist does not report alive, and live peers whose advertised ring
// version differs from ours, which means a broadcast was lost between us.
// This node's own address is never a target.
func (m *Membership) rejoinTargets() []string {
	ringVersion := m.Ring().Version()
	m.liveMu.RLock()
	alive := make(map[string]bool, len(m.alive))
	liveAddrs := make(map[string]bool, len(m.alive))
	var behind []string
	for name, addr := range m.alive {
		alive[name] = true
		liveAddrs[addr] = true
		if v, ok := m.peerRing[name]; ok && v != ringVersion {
			behind = append(behind, addr)
		}
	}
	m.liveMu.RUnlock()
	m.mu.RLock()
	var dead []string
	for name, e := range m.state.members {
		if name != m.cfg.Name && e.Status != StatusRemoved && !alive[name] {
			dead = append(dead, e.Gossip)
		}
	}
	m.mu.RUnlock()

	var targets []string
	for _, s := range m.cfg.Join {
		if !liveAddrs[s] {
			targets = append(targets, s)
		}
	}
	slices.Sort(dead)
	slices.Sort(behind)
	targets = append(append(targets, dead...), behind...)
	var out []string
	for _, t := range targets {
		if t != m.gossip && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// joinAll joins each address separately (so one unreachable address does not
// cost the others their turn), a few at a time, and returns how many
// answered. memberlist bounds each join by its TCPTimeout. Once Shutdown has
// begun no new join starts.
func (m *Membership) joinAll(addrs []string) int {
	errs := make([]error, len(addrs))
	for i := range errs {
		errs[i] = errStopped
	}
	sem := make(chan struct{}, maxParallelJoins)
	var wg sync.WaitGroup
loop:
	for i, addr := range addrs {
		select {
		case <-m.stop:
			break loop
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, errs[i] = m.ml.Join([]string{addr})
		}()
	}
	wg.Wait()
	ok := 0
	for i, addr := range addrs {
		switch failing := m.rejoinLog[addr]; {
		case errs[i] == nil:
			ok++
			if failing {
				m.logger.Printf("[INFO] membership: reached %s again", addr)
			}
			delete(m.rejoinLog, addr)
		case errs[i] == errStopped:
		case !failing:
			// Logged once per outage, not once per round.
			m.logger.Printf("[WARN] membership: join %s: %s", addr, strings.Join(strings.Fields(errs[i].Error()), " "))
			m.rejoinLog[addr] = true
		}
	}
	return ok
}
