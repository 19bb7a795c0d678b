package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/antientropy"
	"go.uber.org/zap"
)

// AAEConfig configures active anti-entropy: the Merkle trees every node
// keeps of the partitions it holds, and the exchanges through which the
// replicas of a partition compare them and sync what differs. The budgets
// bound what this node initiates; see docs/ARCHITECTURE.md, "Anti-entropy".
type AAEConfig struct {
	// Enabled keeps the trees and runs exchanges. Default true. Off, the
	// node keeps no trees and refuses its peers' exchanges; turning it on
	// again rebuilds the trees from storage.
	Enabled bool `yaml:"enabled"`
	// Interval is the least time between two routine exchanges of one
	// partition. A peer that comes back is exchanged with at once,
	// whatever the interval. Default 5 minutes.
	Interval time.Duration `yaml:"interval"`
	// MaxConcurrent is the most exchanges this node initiates at once.
	// Default 2.
	MaxConcurrent int `yaml:"max_concurrent"`
	// ExchangesPerSecond and ExchangeBurst bound how fast exchanges start.
	// An exchange of identical replicas is one round trip of about 100
	// bytes. Defaults 8 per second, burst 16: a node replicating 1,024
	// partitions compares each of them every Interval with room to spare
	// for a peer that comes back.
	ExchangesPerSecond float64 `yaml:"exchanges_per_second"`
	ExchangeBurst      int     `yaml:"exchange_burst"`
	// RepairKeysPerSecond and RepairBurst bound the keys this node's
	// exchanges repair: no exchange starts while those already finished
	// exceed the budget. Defaults 2,000 keys per second, burst 20,000.
	RepairKeysPerSecond float64 `yaml:"repair_keys_per_second"`
	RepairBurst         int     `yaml:"repair_burst"`
	// RetryAfter is how long a partition and peer wait after an exchange
	// failed, or found the partition busy with another exchange. Default
	// 10 s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// MaxKeysPerExchange ends an exchange once it has found this many
	// differing keys; the next one, started at once within the repair
	// budget, finds the rest. Default 10,000.
	MaxKeysPerExchange int `yaml:"max_keys_per_exchange"`
	// BatchKeys and BatchBytes bound one fetch or push of repaired
	// objects (at least one object goes in a batch). Defaults 256 keys,
	// 1 MiB.
	BatchKeys  int `yaml:"batch_keys"`
	BatchBytes int `yaml:"batch_bytes"`
	// RebuildKeysPerSecond and RebuildBytesPerSecond bound the reading of
	// storage when trees are rebuilt (after a crash, or when anti-entropy
	// is turned on over existing data). Defaults 20,000 keys and 8 MiB per
	// second.
	RebuildKeysPerSecond  float64 `yaml:"rebuild_keys_per_second"`
	RebuildBytesPerSecond float64 `yaml:"rebuild_bytes_per_second"`
}

// maxAAEBatchKeys is the most keys a peer may fetch or push in one message.
const maxAAEBatchKeys = 1024

// DefaultAAEConfig returns the defaults each field documents.
func DefaultAAEConfig() AAEConfig {
	rb := antientropy.DefaultRebuildConfig()
	return AAEConfig{
		Enabled:             true,
		Interval:            5 * time.Minute,
		MaxConcurrent:       2,
		ExchangesPerSecond:  8,
		ExchangeBurst:       16,
		RepairKeysPerSecond: 2000,
		RepairBurst:         20_000,
		RetryAfter:          10 * time.Second,
		MaxKeysPerExchange:  10_000,
		BatchKeys:           256,
		BatchBytes:          1 << 20,

		RebuildKeysPerSecond:  rb.KeysPerSecond,
		RebuildBytesPerSecond: rb.BytesPerSecond,
	}
}

func (c AAEConfig) scheduler() antientropy.SchedulerConfig {
	return antientropy.SchedulerConfig{
		MaxConcurrent: c.MaxConcurrent, MinInterval: int64(c.Interval), RetryAfter: int64(c.RetryAfter),
		ExchangesPerSecond: c.ExchangesPerSecond, ExchangeBurst: c.ExchangeBurst,
		RepairsPerSecond: c.RepairKeysPerSecond, RepairBurst: c.RepairBurst,
	}
}

func (c AAEConfig) rebuild() antientropy.RebuildConfig {
	return antientropy.RebuildConfig{KeysPerSecond: c.RebuildKeysPerSecond, BytesPerSecond: c.RebuildBytesPerSecond}
}

func (c AAEConfig) validate() []error {
	var errs []error
	if err := c.scheduler().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("aae: %w", err))
	}
	if err := c.rebuild().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("aae: %w", err))
	}
	if c.MaxKeysPerExchange < 1 {
		errs = append(errs, fmt.Errorf("aae: max_keys_per_exchange %d: must be at least 1", c.MaxKeysPerExchange))
	}
	if c.BatchKeys < 1 || c.BatchKeys > maxAAEBatchKeys {
		errs = append(errs, fmt.Errorf("aae: batch_keys %d: must be between 1 and %d", c.BatchKeys, maxAAEBatchKeys))
	}
	if c.BatchBytes < 1 || c.BatchBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("aae: batch_bytes %d: must be between 1 and 16 MiB", c.BatchBytes))
	}
	return errs
}

// aae runs this node's side of anti-entropy: one goroutine (run) owns the
// scheduler and starts exchanges, each on a goroutine of its own; another
// rebuilds the trees that need it. All of them end at Shutdown. Peers'
// exchanges are answered by the handlers in aae_serve.go.
type aae struct {
	n       *Node
	cfg     AAEConfig
	trees   *aaeTrees
	epoch   time.Time
	rebuild []uint32 // partitions to rebuild at start

	wake    chan struct{}
	dirty   atomic.Bool // membership or tree readiness changed
	results chan exchangeResult

	mu       sync.Mutex // guards what follows; run and status readers share it
	sched    *antientropy.Scheduler
	assigned map[uint32][]string // partitions replicated -> peers alive
	alive    map[string]bool     // nil until the first refresh
	last     []partExchange      // per partition
	failing  map[string]int      // failed exchanges in a row, per peer

	leaseMu sync.Mutex
	leases  map[uint32]aaeLease

	stats aaeCounters
	m     aaeMetrics
}

// partExchange is the last completed exchange of one partition.
type partExchange struct {
	at     int64 // on the aae clock; meaningful when done
	done   bool
	inSync bool // it found nothing to repair
}

type aaeCounters struct {
	exchanges, failures, fetched, pushed, sent, received, rebuilds atomic.Uint64
}

func newAAE(n *Node, trees *aaeTrees, rebuild []uint32) (*aae, error) {
	sched, err := antientropy.NewScheduler(n.cfg.AAE.scheduler())
	if err != nil {
		return nil, err
	}
	a := &aae{
		n: n, cfg: n.cfg.AAE, trees: trees, epoch: n.now(), rebuild: rebuild,
		wake: make(chan struct{}, 1), results: make(chan exchangeResult, n.cfg.AAE.MaxConcurrent),
		sched: sched, assigned: map[uint32][]string{}, last: make([]partExchange, n.cfg.Partitions),
		failing: map[string]int{}, leases: map[uint32]aaeLease{},
	}
	a.dirty.Store(true)
	a.m = newAAEMetrics(n, a)
	return a, nil
}

// clock is the time the scheduler runs on: nanoseconds since the manager
// started, read from the monotonic clock so that wall-clock steps change
// nothing.
func (a *aae) clock() int64 { return int64(a.n.now().Sub(a.epoch)) }

func (a *aae) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// membershipChanged is called by the node on every membership change; the
// run loop recomputes what to exchange with whom.
func (a *aae) membershipChanged() {
	a.dirty.Store(true)
	a.poke()
}

// run starts exchanges as the scheduler allows until ctx ends, then waits
// for the exchanges and the rebuild in flight.
func (a *aae) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if len(a.rebuild) > 0 {
		parts := a.rebuild
		wg.Go(func() { a.rebuildTrees(ctx, parts) })
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if a.dirty.Swap(false) {
			a.refresh()
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
				res := a.exchange(ctx, p)
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
// that are alive, and makes the pairs of every peer that came back urgent:
// it missed writes that neither hints nor read repair may cover.
func (a *aae) refresh() {
	n := a.n
	r := n.ring()
	rf := n.replicationFactor(r)
	alive := map[string]bool{}
	for _, m := range r.Members() {
		if m != n.cfg.Name && n.members.Alive(m) {
			alive[m] = true
		}
	}
	var as []antientropy.Assignment
	assigned := map[uint32][]string{}
	for p := range uint32(r.Partitions()) {
		primaries, _ := r.Preference(p, rf)
		if !slices.Contains(primaries, n.cfg.Name) {
			continue
		}
		var peers []string
		for _, peer := range primaries {
			if peer != n.cfg.Name && alive[peer] {
				peers = append(peers, peer)
			}
		}
		assigned[p] = peers
		// A tree still being rebuilt cannot be compared yet; the rebuild
		// marks the manager dirty when it is done.
		if len(peers) > 0 && a.trees.ready(p) {
			as = append(as, antientropy.Assignment{Partition: p, Peers: peers})
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.sched.SetPartitions(as); err != nil {
		n.log.Error("anti-entropy: cannot assign partitions", zap.Error(err))
		return
	}
	a.assigned = assigned
	if a.alive != nil {
		for peer := range alive {
			if !a.alive[peer] {
				a.sched.Touch(peer)
				n.log.Info("anti-entropy: peer is back; exchanging its partitions first", zap.String("peer", peer))
			}
		}
	}
	a.alive = alive
}

// finish records an exchange's end, logging only when a peer's exchanges
// start failing or recover.
func (a *aae) finish(res exchangeResult) {
	now := a.clock()
	a.m.observe(res)
	a.mu.Lock()
	defer a.mu.Unlock()
	peer := res.pair.Peer
	switch {
	case res.busy:
		a.sched.Fail(res.pair, now)
	case res.err != nil:
		a.sched.Fail(res.pair, now)
		a.stats.failures.Add(1)
		if a.failing[peer] == 0 && !errors.Is(res.err, context.Canceled) {
			a.n.log.Warn("anti-entropy: exchanges failing; will retry", zap.String("peer", peer),
				zap.Uint32("partition", res.pair.Partition), zap.Error(res.err))
		}
		a.failing[peer]++
	default:
		a.sched.Finish(res.pair, now, res.stats)
		a.stats.exchanges.Add(1)
		a.last[res.pair.Partition] = partExchange{at: now, done: true, inSync: res.keys() == 0}
		if a.failing[peer] > 0 {
			a.n.log.Info("anti-entropy: exchanges recovered", zap.String("peer", peer), zap.Int("failed", a.failing[peer]))
		}
		delete(a.failing, peer)
		if res.keys() > 0 {
			a.n.log.Debug("anti-entropy: partition repaired", zap.Stringer("pair", res.pair),
				zap.Int("fetched", res.fetched), zap.Int("pushed", res.pushed), zap.Bool("truncated", res.stats.Truncated))
		}
	}
}

// aaeLease is the exchange a partition is leased to on this node: its own
// (holder is this node) or a peer's.
type aaeLease struct {
	holder string
	until  time.Time
}

// aaeLeaseTTL is how long a lease outlives the last message of its
// exchange; an initiator that dies mid-exchange holds a partition no
// longer than this.
const aaeLeaseTTL = 30 * time.Second

// acquire leases partition p to holder, or renews its lease. It fails
// while another holder's lease runs: one exchange per partition per node
// at a time, so two replicas never repair the same partition of a third at
// once and send it the same keys twice.
func (a *aae) acquire(p uint32, holder string) bool {
	now := a.n.now()
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	if l, ok := a.leases[p]; ok && l.holder != holder && now.Before(l.until) {
		return false
	}
	a.leases[p] = aaeLease{holder: holder, until: now.Add(aaeLeaseTTL)}
	return true
}

func (a *aae) release(p uint32, holder string) {
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	if a.leases[p].holder == holder {
		delete(a.leases, p)
	}
}

// startAAE runs before the node accepts any write: it loads the trees the
// last clean shutdown saved (deleting the saved copies) and builds the
// manager, which rebuilds the rest in the background once it runs.
func (n *Node) startAAE(trees *aaeTrees) error {
	if trees == nil {
		// Off: this run's writes would outlive any saved tree.
		if err := n.store.DeleteAAERecords(); err != nil {
			return fmt.Errorf("anti-entropy: %w", err)
		}
		return nil
	}
	rebuild, err := trees.load(n.store, n.log)
	if err != nil {
		return fmt.Errorf("anti-entropy: %w", err)
	}
	a, err := newAAE(n, trees, rebuild)
	if err != nil {
		return fmt.Errorf("anti-entropy: %w", err)
	}
	n.aae = a
	return nil
}
