package aae

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/wire"
	"go.uber.org/zap"
)

// AAE runs this node's side of anti-entropy: one goroutine (Run) owns the
// scheduler and starts exchanges, each on a goroutine of its own; another
// rebuilds the trees that need it. All of them end when Run's context
// does. Peers' exchanges are answered by the Serve methods. Built with
// anti-entropy off, it keeps nothing, runs nothing, and refuses peers.
type AAE struct {
	cfg   Config
	d     Deps
	log   *zap.Logger
	trees *Trees // nil when off
	epoch time.Time
	// rebuilding lists the partitions the start found without a usable
	// tree, rebuilt in the background (or first by an exchange that
	// needs one) from one cut, taken once.
	rebuilding  []uint32
	rebuildOnce sync.Once
	rb          *rebuild
	rbErr       error

	wake    chan struct{}
	dirty   atomic.Bool // membership or tree readiness changed
	results chan Result

	mu        sync.Mutex // guards what follows; Run and status readers share it
	sched     *antientropy.Scheduler
	assigned  map[uint32][]string // partitions replicated -> peers alive
	refreshed bool                // assigned was computed at least once
	back      []string            // peers that came back, for the next refresh
	last      []partExchange      // per partition
	failing   map[string]int      // failed exchanges in a row, per peer

	leaseMu sync.Mutex
	leases  map[uint32]lease

	stats counters
	m     metrics
}

// partExchange is the last completed exchange of one partition.
type partExchange struct {
	at     int64 // on the AAE clock; meaningful when done
	done   bool
	inSync bool // it found nothing to repair
}

type counters struct {
	exchanges, failures, fetched, pushed, sent, received, rebuilds atomic.Uint64
	prunedEntries, prunedKeys                                      atomic.Uint64
}

// New builds this node's anti-entropy. It runs before the node accepts
// any write: it loads the trees the last clean shutdown saved (deleting
// the saved copies) and notes the partitions to rebuild, which Run does in
// the background. With anti-entropy off it deletes any saved trees, since
// this run's writes would outlive them.
func New(cfg Config, d Deps) (*AAE, error) {
	d, err := d.withDefaults(cfg.Enabled)
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	a := &AAE{cfg: cfg, d: d, log: d.Logger, epoch: d.Now(), wake: make(chan struct{}, 1),
		results:  make(chan Result, cfg.MaxConcurrent+cfg.UrgentMaxConcurrent),
		assigned: map[uint32][]string{}, failing: map[string]int{}, leases: map[uint32]lease{}}
	if !cfg.Enabled {
		if err := d.Store.DeleteAAERecords(); err != nil {
			return nil, fmt.Errorf("anti-entropy: %w", err)
		}
		return a, nil
	}
	a.trees = d.Trees
	a.last = make([]partExchange, len(d.Trees.slots))
	if a.rebuilding, err = a.trees.load(d.Store, a.log); err != nil {
		return nil, fmt.Errorf("anti-entropy: %w", err)
	}
	origin := fnv.New32a()
	_, _ = origin.Write([]byte(d.Name))
	if a.sched, err = antientropy.NewScheduler(cfg.scheduler(), origin.Sum32()%uint32(len(d.Trees.slots))); err != nil {
		return nil, fmt.Errorf("anti-entropy: %w", err)
	}
	a.dirty.Store(true)
	if a.m, err = newMetrics(d.Registry, a); err != nil {
		return nil, err
	}
	return a, nil
}

// Enabled reports whether anti-entropy runs on this node.
func (a *AAE) Enabled() bool { return a.trees != nil }

// clock is the time the scheduler runs on: nanoseconds since the AAE was
// built, read from the monotonic clock so that wall-clock steps change
// nothing.
func (a *AAE) clock() int64 { return int64(a.d.Now().Sub(a.epoch)) }

func (a *AAE) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// MembershipChanged is called by node on every membership change, with
// the peers that came back since the last call (alive again after being
// down or unreachable; at the node's start, every peer it finds alive,
// since this node is the one that was away). The run loop recomputes what
// to exchange with whom, and exchanges the partitions shared with the
// peers that came back first, on the urgent budget: one side or the other
// missed writes that neither hints nor read repair may cover.
func (a *AAE) MembershipChanged(back []string) {
	if !a.Enabled() {
		return
	}
	if len(back) > 0 {
		a.mu.Lock()
		a.back = append(a.back, back...)
		a.mu.Unlock()
	}
	a.dirty.Store(true)
	a.poke()
}

// Run starts exchanges as the scheduler allows until ctx ends, then waits
// for the exchanges and the rebuild in flight. With anti-entropy off it
// returns at once.
func (a *AAE) Run(ctx context.Context) {
	if !a.Enabled() {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if len(a.rebuilding) > 0 {
		wg.Go(func() { a.rebuildTrees(ctx) })
	}
	if a.cfg.PruneInterval > 0 {
		wg.Go(func() { a.pruneLoop(ctx) })
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if a.dirty.Swap(false) {
			for _, peer := range a.refresh() {
				wg.Go(func() { a.triage(ctx, peer) })
			}
		}
		now := a.clock()
		a.mu.Lock()
		var start []antientropy.Pair
		for {
			p, ok := a.sched.Next(now)
			if !ok {
				break
			}
			start = append(start, p)
		}
		at, ok := a.sched.Wake(now)
		a.mu.Unlock()
		for _, p := range start {
			wg.Go(func() {
				res := a.Exchange(ctx, p)
				select {
				case a.results <- res:
				case <-ctx.Done():
				}
			})
		}
		wait := time.Hour
		if ok {
			wait = max(time.Duration(at-now), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-timer.C:
		case res := <-a.results:
			a.finish(res)
		}
	}
}

// refresh recomputes the partitions this node replicates and their peers
// that are alive, and returns the peers that came back (and are still
// alive), for triage. A partition whose tree is still being rebuilt is
// assigned like any other: its exchange rebuilds it first.
func (a *AAE) refresh() []string {
	r := a.d.Members.Ring()
	rf := a.d.Members.ReplicationFactor(r)
	self := a.d.Name
	var as []antientropy.Assignment
	assigned := map[uint32][]string{}
	for p := range uint32(r.Partitions()) {
		primaries, _ := r.Preference(p, rf)
		if !slices.Contains(primaries, self) {
			continue
		}
		var peers []string
		for _, peer := range primaries {
			if peer != self && a.d.Members.Alive(peer) {
				peers = append(peers, peer)
			}
		}
		assigned[p] = peers
		if len(peers) > 0 && int(p) < len(a.trees.slots) {
			as = append(as, antientropy.Assignment{Partition: p, Peers: peers})
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.sched.SetPartitions(as); err != nil {
		a.log.Error("anti-entropy: cannot assign partitions", zap.Error(err))
		return nil
	}
	// A partition this node starts replicating without a transfer (a
	// member removed, whose partitions pass to the next owners empty) is
	// rebuilt from its other replicas before routine work: its peers are
	// triaged like peers that came back, which makes urgent exactly the
	// partitions whose roots differ. After a transfer the roots agree and
	// it costs one roots query per peer. The first refresh is the node's
	// start, when every peer is triaged anyway.
	if a.refreshed {
		for p, peers := range assigned {
			if _, had := a.assigned[p]; !had {
				a.back = append(a.back, peers...)
			}
		}
	}
	a.refreshed = true
	a.assigned = assigned
	slices.Sort(a.back)
	var back []string
	for _, peer := range slices.Compact(a.back) {
		if a.d.Members.Alive(peer) {
			back = append(back, peer)
		}
	}
	a.back = a.back[:0]
	return back
}

// maxRootsPerQuery bounds one roots query: Q roots of 8 bytes at the
// default Q=1024 fit one 8 KiB answer.
const maxRootsPerQuery = 1024

// triage compares, with a peer that came back, the roots of every
// partition the two replicate, in one message per 1,024 partitions, and
// makes urgent only those that differ or cannot be compared (a tree being
// rebuilt, on either side). A node coming back to replicas that agree, a
// fresh cluster starting, or a peer that flapped without missing a write
// then costs one message instead of an exchange per partition. When the
// roots cannot be had, every shared partition is urgent, as if they all
// differed.
func (a *AAE) triage(ctx context.Context, peer string) {
	a.mu.Lock()
	var parts []uint32
	for p, peers := range a.assigned {
		if slices.Contains(peers, peer) {
			parts = append(parts, p)
		}
	}
	a.mu.Unlock()
	if len(parts) == 0 {
		return
	}
	slices.Sort(parts)
	differ, err := a.differing(ctx, peer, parts)
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	if err != nil {
		a.sched.Touch(peer)
	} else {
		a.sched.TouchPartitions(peer, differ)
	}
	urgent := a.sched.Stats().Urgent
	a.mu.Unlock()
	if err != nil {
		a.log.Info("anti-entropy: peer is back; roots unavailable, exchanging every shared partition first",
			zap.String("peer", peer), zap.Int("urgent", urgent), zap.Error(err))
	} else {
		a.log.Info("anti-entropy: peer is back; exchanging the partitions whose roots differ first",
			zap.String("peer", peer), zap.Int("shared", len(parts)), zap.Int("differing", len(differ)), zap.Int("urgent", urgent))
	}
	a.poke()
}

// differing asks peer for the roots of parts and returns those that
// differ from this node's, or that either side cannot compare yet.
func (a *AAE) differing(ctx context.Context, peer string, parts []uint32) ([]uint32, error) {
	var differ []uint32
	for chunk := range slices.Chunk(parts, maxRootsPerQuery) {
		var resp wire.AAEAnswerResp
		if err := a.call(ctx, peer, wire.TypeAAEQuery, wire.AAEQueryReq{Kind: wire.AAERoots, Partitions: chunk}, &resp); err != nil {
			return nil, err
		}
		if len(resp.Roots) != len(chunk) {
			return nil, fmt.Errorf("%w: %s answered %d roots for %d partitions", cairn.ErrProtocol, peer, len(resp.Roots), len(chunk))
		}
		for i, p := range chunk {
			mine, ok := a.trees.root(p)
			if !ok || mine != resp.Roots[i] || slices.Contains(resp.NotReady, p) {
				differ = append(differ, p)
			}
		}
	}
	return differ, nil
}

// finish records an exchange's end, logging only when a peer's exchanges
// start failing or recover.
func (a *AAE) finish(res Result) {
	now := a.clock()
	a.m.observe(res)
	a.mu.Lock()
	defer a.mu.Unlock()
	peer := res.Pair.Peer
	switch {
	case res.Busy:
		a.sched.Busy(res.Pair, now)
	case res.Err != nil:
		a.sched.Fail(res.Pair, now)
		a.stats.failures.Add(1)
		if a.failing[peer] == 0 && !errors.Is(res.Err, context.Canceled) {
			a.log.Warn("anti-entropy: exchanges failing; will retry", zap.String("peer", peer),
				zap.Uint32("partition", res.Pair.Partition), zap.Error(res.Err))
		}
		a.failing[peer]++
	default:
		a.sched.Finish(res.Pair, now, res.Stats)
		a.stats.exchanges.Add(1)
		a.last[res.Pair.Partition] = partExchange{at: now, done: true, inSync: res.Keys() == 0}
		if a.failing[peer] > 0 {
			a.log.Info("anti-entropy: exchanges recovered", zap.String("peer", peer), zap.Int("failed", a.failing[peer]))
		}
		delete(a.failing, peer)
		if res.Keys() > 0 {
			a.log.Debug("anti-entropy: partition repaired", zap.Stringer("pair", res.Pair),
				zap.Int("fetched", res.Fetched), zap.Int("pushed", res.Pushed), zap.Bool("truncated", res.Stats.Truncated),
				zap.Duration("took", res.Took))
		}
	}
}

// lease is the exchange a partition is leased to on this node: its own
// (holder is this node) or a peer's.
type lease struct {
	holder string
	until  time.Time
}

// leaseTTL is how long a lease outlives the last message of its exchange;
// an initiator that dies mid-exchange holds a partition no longer than
// this.
const leaseTTL = 30 * time.Second

// acquire leases partition p to holder, or renews its lease. It fails
// while another holder's lease runs: one exchange per partition per node
// at a time, so two replicas never repair the same partition of a third at
// once and send it the same keys twice.
func (a *AAE) acquire(p uint32, holder string) bool {
	now := a.d.Now()
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	if l, ok := a.leases[p]; ok && l.holder != holder && now.Before(l.until) {
		return false
	}
	a.leases[p] = lease{holder: holder, until: now.Add(leaseTTL)}
	return true
}

func (a *AAE) release(p uint32, holder string) {
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	if a.leases[p].holder == holder {
		delete(a.leases, p)
	}
}
