package antientropy

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/pace"
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
//
// There are two budgets. The routine one walks every partition once per
// MinInterval at a pace that costs little. The urgent one is for the
// partitions shared with a peer that came back (Touch): that peer missed
// writes, and catching it up is worth a burst of work, finished in seconds
// rather than spread over an interval. Each budget has its own
// concurrency, exchange rate and repair rate, so a catch-up neither waits
// behind the routine walk nor speeds it up.
type SchedulerConfig struct {
	// MaxConcurrent is the most routine exchanges running at once.
	// Default 2.
	MaxConcurrent int
	// MinInterval is the least time from one completed exchange of a
	// partition to the start of its next routine one. Urgent exchanges,
	// and the rest of one cut short by its key budget, do not wait for
	// it. Default 5 minutes.
	MinInterval int64
	// RetryAfter is how long a pair whose exchange failed waits before it
	// is tried again. Default 30 seconds.
	RetryAfter int64
	// BusyRetryAfter is how long a pair whose partition was busy (in
	// another exchange, here or at the peer) waits: not a failure, and
	// the other exchange is usually over soon. Default 1 second.
	BusyRetryAfter int64
	// ExchangesPerSecond and ExchangeBurst bound how fast routine
	// exchanges start. An exchange of identical replicas costs one round
	// trip of a few bytes. Defaults 4 per second, burst 8: a node holding
	// 1,024 partitions compares all of them in about 4.5 minutes.
	ExchangesPerSecond float64
	ExchangeBurst      int
	// RepairsPerSecond and RepairBurst bound the keys routine exchanges
	// repair: no routine exchange starts while the keys the finished ones
	// repaired exceed the budget. Defaults 2,000 keys per second, burst
	// 20,000.
	RepairsPerSecond float64
	RepairBurst      int
	// UrgentMaxConcurrent, UrgentExchangesPerSecond, UrgentExchangeBurst,
	// UrgentRepairsPerSecond and UrgentRepairBurst are the same bounds for
	// urgent exchanges. Defaults 8 at once, 200 per second with a burst
	// of 200, 50,000 keys per second with a burst of 100,000: a returning
	// node sharing 1,024 partitions with each of two peers is compared
	// in about ten seconds, and 100,000 missed keys repaired in a few.
	UrgentMaxConcurrent      int
	UrgentExchangesPerSecond float64
	UrgentExchangeBurst      int
	UrgentRepairsPerSecond   float64
	UrgentRepairBurst        int
}

// DefaultSchedulerConfig returns the defaults.
func DefaultSchedulerConfig() SchedulerConfig {
	return SchedulerConfig{
		MaxConcurrent:      2,
		MinInterval:        300 * second,
		RetryAfter:         30 * second,
		BusyRetryAfter:     second,
		ExchangesPerSecond: 4,
		ExchangeBurst:      8,
		RepairsPerSecond:   2000,
		RepairBurst:        20_000,

		UrgentMaxConcurrent:      8,
		UrgentExchangesPerSecond: 200,
		UrgentExchangeBurst:      200,
		UrgentRepairsPerSecond:   50_000,
		UrgentRepairBurst:        100_000,
	}
}

// Validate reports every problem, wrapping cairn.ErrInvalidArgument.
func (c SchedulerConfig) Validate() error {
	var errs []error
	if c.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("max concurrent %d: want at least 1", c.MaxConcurrent))
	}
	if c.UrgentMaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("urgent max concurrent %d: want at least 1", c.UrgentMaxConcurrent))
	}
	if c.MinInterval < 0 {
		errs = append(errs, fmt.Errorf("min interval %d ns: want at least 0", c.MinInterval))
	}
	if c.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry after %d ns: want at least 0", c.RetryAfter))
	}
	if c.BusyRetryAfter < 0 {
		errs = append(errs, fmt.Errorf("busy retry after %d ns: want at least 0", c.BusyRetryAfter))
	}
	errs = append(errs, budgetProblems("exchange ", c.ExchangesPerSecond, c.ExchangeBurst)...)
	errs = append(errs, budgetProblems("repair ", c.RepairsPerSecond, c.RepairBurst)...)
	errs = append(errs, budgetProblems("urgent exchange ", c.UrgentExchangesPerSecond, c.UrgentExchangeBurst)...)
	errs = append(errs, budgetProblems("urgent repair ", c.UrgentRepairsPerSecond, c.UrgentRepairBurst)...)
	if len(errs) > 0 {
		return cairn.InvalidArgument("antientropy scheduler config: %v", joinProblems(errs))
	}
	return nil
}

// SchedulerStats are the scheduler's figures.
type SchedulerStats struct {
	// Partitions and Pairs are what is assigned now.
	Partitions, Pairs int
	// Running and Urgent are exchanges running (RunningUrgent of them on
	// the urgent budget) and pairs waiting urgently.
	Running, RunningUrgent, Urgent int
	// Started, Completed, Failed, Busy and Truncated count exchanges;
	// Truncated ones are also Completed.
	Started, Completed, Failed, Busy, Truncated uint64
	// KeysRepaired sums the keys completed exchanges handed out.
	KeysRepaired uint64
	// NeverExchanged counts assigned partitions with no completed exchange;
	// OldestExchange is the completion time of the least recently exchanged
	// of the others (0 if none): how stale the node's coverage is.
	NeverExchanged int
	OldestExchange int64
}

type partState struct {
	part     uint32
	peers    []string
	states   []*pairState // states[i] is the pair with peers[i]
	busy     bool         // an exchange of the partition is running
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
	// more: a routine exchange of the pair was cut short by its key
	// budget; the rest follows before other routine work, without
	// waiting for MinInterval.
	more bool
}

// budget is one class of exchanges' share: its slots, its exchange starts
// and its keys repaired.
type budget struct {
	max     int
	running int
	exch    *pace.Bucket
	repair  *pace.Bucket
}

func newBudget(max int, rate float64, burst int, repairRate float64, repairBurst int) *budget {
	exch, _ := pace.NewBucket(rate, int64(burst))
	repair, _ := pace.NewBucket(repairRate, int64(repairBurst))
	return &budget{max: max, exch: exch, repair: repair}
}

// open reports whether the budget lets an exchange start at now, before
// the exchange token is taken: a free slot and no repair debt.
func (b *budget) open(now int64) bool {
	ok, _ := b.repair.Admit(now, 0)
	return b.running < b.max && ok
}

// readyAt is the earliest time the budget's buckets let an exchange start.
func (b *budget) readyAt(now int64) int64 {
	return max(b.exch.ReadyAt(now, 1), b.repair.ReadyAt(now, 0))
}

// Scheduler decides which exchange this node starts next, within a budget.
// It is pure and deterministic: times come in as arguments, and ties are
// broken by fixed rules, so a sequence of calls always gives the same
// decisions. It is not safe for concurrent use.
//
// Next picks, among pairs whose partition has no exchange running and that
// are not waiting out RetryAfter after a failure (BusyRetryAfter after a
// busy partition):
//
//  1. within the urgent budget, urgent pairs (a Touch of the peer, or an
//     urgent exchange cut short by MaxKeys), earliest Touch first, then
//     partition from Origin upwards (wrapping), then peer name;
//  2. within the routine budget, a pair whose routine exchange was cut
//     short, lowest partition first; else the partition whose last
//     completed exchange is oldest (never exchanged counts as oldest), at
//     least MinInterval ago, lowest partition first on ties; with, among
//     its peers, the one least recently exchanged with (never first),
//     then by name.
//
// An exchange of either class starts only when fewer than its class's
// maximum run, its exchange budget has a token, and its repair budget is
// not in debt.
type Scheduler struct {
	cfg   SchedulerConfig
	parts map[uint32]*partState
	order []uint32 // assigned partitions, ascending
	// ordered is parts in the order of order: the scans below run at
	// every wake-up of a node's loop and walk it without a map lookup.
	ordered []*partState
	pairs   map[Pair]*pairState
	running map[Pair]*budget // the budget each running exchange is charged to
	busy    map[uint32]bool  // partitions with an exchange running
	touches uint64
	routine *budget
	urgent  *budget
	origin  uint32
	stats   SchedulerStats
}

// NewScheduler returns a scheduler with nothing assigned. origin is where
// the urgent walk over partitions starts: replicas that start from
// different partitions (node passes a hash of its name) rarely ask for the
// same partition at the same time.
func NewScheduler(cfg SchedulerConfig, origin uint32) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scheduler{
		cfg: cfg, parts: map[uint32]*partState{}, pairs: map[Pair]*pairState{},
		running: map[Pair]*budget{}, busy: map[uint32]bool{}, origin: origin,
		routine: newBudget(cfg.MaxConcurrent, cfg.ExchangesPerSecond, cfg.ExchangeBurst, cfg.RepairsPerSecond, cfg.RepairBurst),
		urgent: newBudget(cfg.UrgentMaxConcurrent, cfg.UrgentExchangesPerSecond, cfg.UrgentExchangeBurst,
			cfg.UrgentRepairsPerSecond, cfg.UrgentRepairBurst),
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
		ps := &partState{part: a.Partition, peers: peers, busy: s.busy[a.Partition]}
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
			ps.states = append(ps.states, st)
		}
	}
	s.parts, s.pairs = parts, pairs
	s.order = s.order[:0]
	for p := range parts {
		s.order = append(s.order, p)
	}
	slices.Sort(s.order)
	s.ordered = s.ordered[:0]
	for _, p := range s.order {
		s.ordered = append(s.ordered, parts[p])
	}
	return nil
}

// Touch makes every assigned pair with peer urgent: node calls it when the
// peer comes back (alive again after being down or unreachable, or when
// this node itself starts), since one side missed writes that neither
// hints nor read repair may cover. A pair already urgent keeps its place.
func (s *Scheduler) Touch(peer string) {
	s.TouchPartitions(peer, s.order)
}

// TouchPartitions is Touch for the given partitions only: those a
// comparison of roots with the peer that came back found different (or
// could not compare). A peer that comes back to replicas that already
// agree then costs no exchange at all.
func (s *Scheduler) TouchPartitions(peer string, parts []uint32) {
	s.touches++
	for _, part := range parts {
		if st := s.pairs[Pair{part, peer}]; st != nil && st.urgent == 0 {
			st.urgent = s.touches
		}
	}
}

// Next returns the exchange to start at now, if a budget allows one, and
// counts it as running until Finish, Fail or Busy.
func (s *Scheduler) Next(now int64) (Pair, bool) {
	if s.urgent.open(now) {
		if p, ok := s.pickUrgent(now); ok {
			if ok, _ := s.urgent.exch.Admit(now, 1); ok {
				return s.start(p, s.urgent), true
			}
		}
	}
	if s.routine.open(now) {
		if p, ok := s.pickRoutine(now); ok {
			if ok, _ := s.routine.exch.Admit(now, 1); ok {
				return s.start(p, s.routine), true
			}
		}
	}
	return Pair{}, false
}

func (s *Scheduler) start(p Pair, b *budget) Pair {
	s.running[p] = b
	b.running++
	s.busy[p.Partition] = true
	if ps := s.parts[p.Partition]; ps != nil {
		ps.busy = true
	}
	s.stats.Started++
	return p
}

// pickUrgent applies rule 1 of the Scheduler's doc comment.
func (s *Scheduler) pickUrgent(now int64) (Pair, bool) {
	var best Pair
	var bestSeq uint64
	from, _ := slices.BinarySearch(s.order, s.origin)
	for i := range s.ordered {
		ps := s.ordered[(from+i)%len(s.ordered)]
		if ps.busy {
			continue
		}
		for j, st := range ps.states {
			if st.urgent != 0 && st.retryAt <= now && (bestSeq == 0 || st.urgent < bestSeq) {
				best, bestSeq = Pair{ps.part, ps.peers[j]}, st.urgent
			}
		}
	}
	return best, bestSeq != 0
}

// pickRoutine applies rule 2 of the Scheduler's doc comment.
func (s *Scheduler) pickRoutine(now int64) (Pair, bool) {
	for _, ps := range s.ordered {
		if ps.busy {
			continue
		}
		for j, st := range ps.states {
			if st.more && st.retryAt <= now {
				return Pair{ps.part, ps.peers[j]}, true
			}
		}
	}
	var best Pair
	found := false
	var bestPart *partState
	for _, ps := range s.ordered {
		if ps.busy || (ps.done && now-ps.lastDone < s.cfg.MinInterval) {
			continue
		}
		if found && !olderThan(ps.done, ps.lastDone, bestPart.done, bestPart.lastDone) {
			continue
		}
		var pick *pairState
		var pickPeer string
		for j, st := range ps.states {
			if st.retryAt > now {
				continue
			}
			if pick == nil || olderThan(st.done, st.lastDone, pick.done, pick.lastDone) {
				pick, pickPeer = st, ps.peers[j]
			}
		}
		if pick != nil {
			best, bestPart, found = Pair{ps.part, pickPeer}, ps, true
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
// stats: the keys it handed out are charged to the repair budget it ran
// under, and an exchange cut short by its key budget is followed by the
// rest under the same budget (urgent again, or first of the routine
// work). Finish of a pair not running does nothing.
func (s *Scheduler) Finish(p Pair, now int64, st ExchangeStats) {
	b := s.release(p)
	if b == nil {
		return
	}
	s.stats.Completed++
	keys := st.KeysMissingHere + st.KeysMissingThere + st.KeysDiffering
	s.stats.KeysRepaired += uint64(keys)
	b.repair.Take(now, int64(keys))
	if ps := s.parts[p.Partition]; ps != nil {
		ps.done, ps.lastDone = true, now
	}
	ps := s.pairs[p]
	if ps == nil {
		return
	}
	ps.done, ps.lastDone, ps.retryAt, ps.urgent, ps.more = true, now, 0, 0, false
	if st.Truncated {
		s.stats.Truncated++
		if b == s.urgent {
			s.touches++
			ps.urgent = s.touches
		} else {
			ps.more = true
		}
	}
}

// Fail records that a pair's exchange failed at now (the peer did not
// answer, or answered garbage): the pair waits RetryAfter, keeping its
// urgency. Fail of a pair not running does nothing.
func (s *Scheduler) Fail(p Pair, now int64) {
	if s.release(p) == nil {
		return
	}
	s.stats.Failed++
	if ps := s.pairs[p]; ps != nil {
		ps.retryAt = now + s.cfg.RetryAfter
	}
}

// Busy records that a pair's exchange found its partition in another
// exchange (here or at the peer) at now: not a failure; the pair waits
// BusyRetryAfter, keeping its urgency. Busy of a pair not running does
// nothing.
func (s *Scheduler) Busy(p Pair, now int64) {
	if s.release(p) == nil {
		return
	}
	s.stats.Busy++
	if ps := s.pairs[p]; ps != nil {
		ps.retryAt = now + s.cfg.BusyRetryAfter
	}
}

func (s *Scheduler) release(p Pair) *budget {
	b := s.running[p]
	if b == nil {
		return nil
	}
	b.running--
	delete(s.running, p)
	delete(s.busy, p.Partition)
	if ps := s.parts[p.Partition]; ps != nil {
		ps.busy = false
	}
	return b
}

// Wake is the earliest time at or after now at which Next could start an
// exchange if nothing else happens (no Finish, Fail, Busy, Touch or
// SetPartitions): node sleeps until then, or until one of those happens.
// ok is false when nothing can start before one of those happens.
func (s *Scheduler) Wake(now int64) (at int64, ok bool) {
	var urgentAt, routineAt int64
	urgentOK := s.urgent.running < s.urgent.max
	routineOK := s.routine.running < s.routine.max
	var uFound, rFound bool
	for _, ps := range s.ordered {
		if ps.busy {
			continue
		}
		due := now
		if ps.done {
			due = max(now, ps.lastDone+s.cfg.MinInterval)
		}
		for _, st := range ps.states {
			retry := max(now, st.retryAt)
			if urgentOK && st.urgent != 0 && (!uFound || retry < urgentAt) {
				urgentAt, uFound = retry, true
			}
			t := max(retry, due)
			if st.more {
				t = retry
			}
			if routineOK && (!rFound || t < routineAt) {
				routineAt, rFound = t, true
			}
		}
	}
	if uFound {
		at, ok = max(urgentAt, s.urgent.readyAt(now)), true
	}
	if rFound {
		t := max(routineAt, s.routine.readyAt(now))
		if !ok || t < at {
			at, ok = t, true
		}
	}
	return at, ok
}

// Stats returns the scheduler's figures.
func (s *Scheduler) Stats() SchedulerStats {
	st := s.stats
	st.Partitions, st.Pairs, st.Running, st.RunningUrgent = len(s.parts), len(s.pairs), len(s.running), s.urgent.running
	st.OldestExchange = 0
	first := true
	for _, ps := range s.ordered {
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
