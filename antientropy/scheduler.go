package antientropy

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/cairnkv/cairn"
)

// second is one second in the nanoseconds the scheduler's times are in.
const second int64 = 1e9

// Pair names one exchange: a partition this node replicates and the peer
// replica it compares with.
type Pair struct {
	Partition uint32
	Peer      string
}

func (p Pair) String() string { return fmt.Sprintf("%d/%s", p.Partition, p.Peer) }

// Assignment is a partition this node replicates and its other replicas.
type Assignment struct {
	Partition uint32
	Peers     []string
}

// SchedulerConfig is the budget of the exchanges a node initiates. Times
// are nanoseconds.
type SchedulerConfig struct {
	// MaxConcurrent is the most exchanges running at once. Default 2.
	MaxConcurrent int
	// MinInterval is the least time from one completed exchange of a
	// partition to the start of its next routine one. Urgent exchanges
	// (Touch, or one cut short by its key budget) do not wait for it.
	// Default 5 minutes.
	MinInterval int64
	// RetryAfter is how long a pair whose exchange failed waits before it
	// is tried again. Default 30 seconds.
	RetryAfter int64
	// ExchangesPerSecond and ExchangeBurst bound how fast exchanges start.
	// An exchange of identical replicas costs one round trip of a few
	// bytes. Defaults 4 per second, burst 8: a node holding 1,024
	// partitions compares all of them in about 4.5 minutes.
	ExchangesPerSecond float64
	ExchangeBurst      int
	// RepairsPerSecond and RepairBurst bound the keys repaired: no exchange
	// starts while the keys the finished ones repaired exceed the budget.
	// Defaults 2,000 keys per second, burst 20,000.
	RepairsPerSecond float64
	RepairBurst      int
}

// DefaultSchedulerConfig returns the defaults.
func DefaultSchedulerConfig() SchedulerConfig {
	return SchedulerConfig{
		MaxConcurrent:      2,
		MinInterval:        300 * second,
		RetryAfter:         30 * second,
		ExchangesPerSecond: 4,
		ExchangeBurst:      8,
		RepairsPerSecond:   2000,
		RepairBurst:        20_000,
	}
}

// Validate reports every problem, wrapping cairn.ErrInvalidArgument.
func (c SchedulerConfig) Validate() error {
	var errs []error
	if c.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("max concurrent %d: want at least 1", c.MaxConcurrent))
	}
	if c.MinInterval < 0 {
		errs = append(errs, fmt.Errorf("min interval %d ns: want at least 0", c.MinInterval))
	}
	if c.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry after %d ns: want at least 0", c.RetryAfter))
	}
	errs = append(errs, bucketProblems("exchange ", c.ExchangesPerSecond, c.ExchangeBurst)...)
	errs = append(errs, bucketProblems("repair ", c.RepairsPerSecond, c.RepairBurst)...)
	if len(errs) > 0 {
		return cairn.InvalidArgument("antientropy scheduler config: %v", joinProblems(errs))
	}
	return nil
}

// SchedulerStats are the scheduler's figures.
type SchedulerStats struct {
	// Partitions and Pairs are what is assigned now.
	Partitions, Pairs int
	// Running and Urgent are exchanges running and pairs waiting urgently.
	Running, Urgent int
	// Started, Completed, Failed and Truncated count exchanges; Truncated
	// ones are also Completed.
	Started, Completed, Failed, Truncated uint64
	// KeysRepaired sums the keys completed exchanges handed out.
	KeysRepaired uint64
	// NeverExchanged counts assigned partitions with no completed exchange;
	// OldestExchange is the completion time of the least recently exchanged
	// of the others (0 if none): how stale the node's coverage is.
	NeverExchanged int
	OldestExchange int64
}

type partState struct {
	peers    []string
	done     bool
	lastDone int64
}

type pairState struct {
	done     bool
	lastDone int64
	retryAt  int64
	// urgent is 0, or the Touch sequence that made the pair urgent:
	// urgent pairs go first, oldest first.
	urgent uint64
}

// Scheduler decides which exchange this node starts next, within a budget.
// It is pure and deterministic: times come in as arguments, and ties are
// broken by fixed rules, so a sequence of calls always gives the same
// decisions. It is not safe for concurrent use.
//
// Next picks, among pairs whose partition has no exchange running and that
// are not waiting out RetryAfter after a failure:
//
//  1. urgent pairs first (a Touch of the peer, or an exchange cut short by
//     MaxKeys), earliest Touch first, then lowest partition, then peer name;
//  2. else the routine partition whose last completed exchange is oldest
//     (never exchanged counts as oldest), at least MinInterval ago, lowest
//     partition first on ties; with, among its peers, the one least recently
//     exchanged with (never first), then by name.
//
// An exchange starts only when fewer than MaxConcurrent run, the exchange
// budget has a token, and the repair budget is not in debt.
type Scheduler struct {
	cfg     SchedulerConfig
	parts   map[uint32]*partState
	order   []uint32 // assigned partitions, ascending
	pairs   map[Pair]*pairState
	running map[Pair]bool
	busy    map[uint32]bool // partitions with an exchange running
	touches uint64
	exch    *TokenBucket
	repair  *TokenBucket
	stats   SchedulerStats
}

// NewScheduler returns a scheduler with nothing assigned.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	exch, _ := NewTokenBucket(cfg.ExchangesPerSecond, cfg.ExchangeBurst)
	repair, _ := NewTokenBucket(cfg.RepairsPerSecond, cfg.RepairBurst)
	return &Scheduler{
		cfg: cfg, parts: map[uint32]*partState{}, pairs: map[Pair]*pairState{},
		running: map[Pair]bool{}, busy: map[uint32]bool{}, exch: exch, repair: repair,
	}, nil
}

// SetPartitions replaces what this node replicates (call it whenever the
// ring changes). History and urgency of pairs that stay are kept. Exchanges
// running for pairs that go keep their slot until Finish or Fail. A
// partition named twice, or an empty peer name, is an error that changes
// nothing; peers named twice count once.
func (s *Scheduler) SetPartitions(as []Assignment) error {
	parts := make(map[uint32]*partState, len(as))
	pairs := make(map[Pair]*pairState)
	for _, a := range as {
		if _, dup := parts[a.Partition]; dup {
			return cairn.InvalidArgument("antientropy: partition %d assigned twice", a.Partition)
		}
		peers := slices.Clone(a.Peers)
		slices.Sort(peers)
		peers = slices.Compact(peers)
		if len(peers) > 0 && peers[0] == "" {
			return cairn.InvalidArgument("antientropy: partition %d has an empty peer name", a.Partition)
		}
		ps := &partState{peers: peers}
		if old := s.parts[a.Partition]; old != nil {
			ps.done, ps.lastDone = old.done, old.lastDone
		}
		parts[a.Partition] = ps
		for _, peer := range peers {
			p := Pair{a.Partition, peer}
			st := s.pairs[p]
			if st == nil {
				st = &pairState{}
			}
			pairs[p] = st
		}
	}
	s.parts, s.pairs = parts, pairs
	s.order = s.order[:0]
	for p := range parts {
		s.order = append(s.order, p)
	}
	slices.Sort(s.order)
	return nil
}

// Touch makes every assigned pair with peer urgent: node calls it when the
// peer comes back (alive again after being down or unreachable), since
// that peer missed writes that neither hints nor read repair may cover. A
// pair already urgent keeps its place.
func (s *Scheduler) Touch(peer string) {
	s.touches++
	for _, part := range s.order {
		if st := s.pairs[Pair{part, peer}]; st != nil && st.urgent == 0 {
			st.urgent = s.touches
		}
	}
}

// Next returns the exchange to start at now, if the budget allows one, and
// counts it as running until Finish or Fail.
func (s *Scheduler) Next(now int64) (Pair, bool) {
	if len(s.running) >= s.cfg.MaxConcurrent || !s.repair.Allow(now, 0) {
		return Pair{}, false
	}
	p, ok := s.pick(now)
	if !ok || !s.exch.Allow(now, 1) {
		return Pair{}, false
	}
	s.running[p] = true
	s.busy[p.Partition] = true
	s.stats.Started++
	return p, true
}

// pick applies the priority rules of the Scheduler's doc comment.
func (s *Scheduler) pick(now int64) (Pair, bool) {
	var best Pair
	var bestSeq uint64
	for _, part := range s.order {
		if s.busy[part] {
			continue
		}
		for _, peer := range s.parts[part].peers {
			st := s.pairs[Pair{part, peer}]
			if st.urgent != 0 && st.retryAt <= now && (bestSeq == 0 || st.urgent < bestSeq) {
				best, bestSeq = Pair{part, peer}, st.urgent
			}
		}
	}
	if bestSeq != 0 {
		return best, true
	}

	found := false
	var bestPart *partState
	for _, part := range s.order {
		ps := s.parts[part]
		if s.busy[part] || (ps.done && now-ps.lastDone < s.cfg.MinInterval) {
			continue
		}
		if found && !olderThan(ps.done, ps.lastDone, bestPart.done, bestPart.lastDone) {
			continue
		}
		var pick *pairState
		var pickPeer string
		for _, peer := range ps.peers {
			st := s.pairs[Pair{part, peer}]
			if st.retryAt > now {
				continue
			}
			if pick == nil || olderThan(st.done, st.lastDone, pick.done, pick.lastDone) {
				pick, pickPeer = st, peer
			}
		}
		if pick != nil {
			best, bestPart, found = Pair{part, pickPeer}, ps, true
		}
	}
	return best, found
}

// olderThan orders last-completion times, never (done false) first;
// equal times are not older, so earlier candidates win ties.
func olderThan(aDone bool, a int64, bDone bool, b int64) bool {
	if aDone != bDone {
		return !aDone
	}
	return aDone && a < b
}

// Finish records that a pair's exchange completed at now with the given
// stats: the keys it handed out are charged to the repair budget, and an
// exchange cut short by its key budget makes the pair urgent again so the
// rest follows as the budget allows. Finish of a pair not running does
// nothing.
func (s *Scheduler) Finish(p Pair, now int64, st ExchangeStats) {
	if !s.release(p) {
		return
	}
	s.stats.Completed++
	keys := st.KeysMissingHere + st.KeysMissingThere + st.KeysDiffering
	s.stats.KeysRepaired += uint64(keys)
	s.repair.Take(now, keys)
	if ps := s.parts[p.Partition]; ps != nil {
		ps.done, ps.lastDone = true, now
	}
	ps := s.pairs[p]
	if ps == nil {
		return
	}
	ps.done, ps.lastDone, ps.retryAt, ps.urgent = true, now, 0, 0
	if st.Truncated {
		s.stats.Truncated++
		s.touches++
		ps.urgent = s.touches
	}
}

// Fail records that a pair's exchange failed at now (the peer did not
// answer, or answered garbage): the pair waits RetryAfter, keeping its
// urgency. Fail of a pair not running does nothing.
func (s *Scheduler) Fail(p Pair, now int64) {
	if !s.release(p) {
		return
	}
	s.stats.Failed++
	if ps := s.pairs[p]; ps != nil {
		ps.retryAt = now + s.cfg.RetryAfter
	}
}

func (s *Scheduler) release(p Pair) bool {
	if !s.running[p] {
		return false
	}
	delete(s.running, p)
	delete(s.busy, p.Partition)
	return true
}

// Wake is the earliest time at or after now at which Next could start an
// exchange if nothing else happens (no Finish, Fail, Touch or
// SetPartitions): node sleeps until then, or until one of those happens.
// ok is false when nothing can start before one of those happens.
func (s *Scheduler) Wake(now int64) (at int64, ok bool) {
	if len(s.running) >= s.cfg.MaxConcurrent {
		return 0, false
	}
	for _, part := range s.order {
		if s.busy[part] {
			continue
		}
		ps := s.parts[part]
		due := now
		if ps.done {
			due = max(now, ps.lastDone+s.cfg.MinInterval)
		}
		for _, peer := range ps.peers {
			st := s.pairs[Pair{part, peer}]
			t := max(now, st.retryAt)
			if st.urgent == 0 {
				t = max(t, due)
			}
			if !ok || t < at {
				at, ok = t, true
			}
		}
	}
	if !ok {
		return 0, false
	}
	return max(at, s.exch.ReadyAt(now, 1), s.repair.ReadyAt(now, 0)), true
}

// Stats returns the scheduler's figures.
func (s *Scheduler) Stats() SchedulerStats {
	st := s.stats
	st.Partitions, st.Pairs, st.Running = len(s.parts), len(s.pairs), len(s.running)
	st.OldestExchange = 0
	first := true
	for _, part := range s.order {
		ps := s.parts[part]
		if !ps.done {
			st.NeverExchanged++
			continue
		}
		if first || ps.lastDone < st.OldestExchange {
			st.OldestExchange, first = ps.lastDone, false
		}
	}
	for _, ps := range s.pairs {
		if ps.urgent != 0 {
			st.Urgent++
		}
	}
	return st
}

// Running lists the exchanges running, by partition then peer.
func (s *Scheduler) Running() []Pair {
	out := make([]Pair, 0, len(s.running))
	for p := range s.running {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pair) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Peer, b.Peer))
	})
	return out
}
