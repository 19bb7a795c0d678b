package handoff

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/hints"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/pace"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/wire"
	"go.uber.org/zap"
)

// callTimeout bounds one batch's round trip, the owner's fsync included.
const callTimeout = 10 * time.Second

// Handoff delivers the hints this node keeps to their owners, and paces
// the handoff it receives. One goroutine (Run) plans rounds; each round to
// one owner runs on a goroutine of its own; all of them end when Run's
// context does.
type Handoff struct {
	cfg Config
	d   Deps
	log *zap.Logger

	wake    chan struct{}
	results chan roundResult

	// Owned by Run.
	planner hints.Planner
	toClose map[uint32]bool // partitions whose delivered hints wait for their episode to close
	drains  map[string]*drain

	mu       sync.Mutex // guards what status requests read
	failures map[string]int
	active   map[string]bool

	receiveMu sync.Mutex
	receive   *pace.Bucket

	// stored counts the hints written since started (Unix nanoseconds),
	// for ServeHints: pruning asks whether any was written in a while.
	stored  atomic.Uint64
	started int64

	m metrics
}

type roundResult struct {
	owner      string
	delivered  int
	partitions map[uint32]bool
	retryAfter time.Duration
	err        error
}

// New builds a Handoff and registers its metrics. It starts nothing: the
// caller runs Run.
func New(cfg Config, d Deps) (*Handoff, error) {
	d, err := d.withDefaults()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	receive, err := pace.NewBucket(float64(cfg.ReceiveBytesPerSecond), cfg.receiveBurst())
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	h := &Handoff{
		cfg: cfg, d: d, log: d.Logger,
		wake:    make(chan struct{}, 1),
		results: make(chan roundResult, cfg.MaxConcurrent),
		planner: hints.Planner{MaxConcurrent: cfg.MaxConcurrent, BackoffBase: int64(cfg.RetryBase), BackoffMax: int64(cfg.RetryMax)},
		toClose: map[uint32]bool{}, drains: map[string]*drain{}, failures: map[string]int{}, active: map[string]bool{},
		receive: receive, started: d.Now().UnixNano(),
	}
	if h.m, err = newMetrics(d.Registry, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Poke asks for a planning pass now: node calls it when a peer came back,
// so what is kept for it goes now rather than at the next interval.
func (h *Handoff) Poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// HintStored counts a write this node stored as a hint while standing in
// for an unreachable primary (node's write paths call it).
func (h *Handoff) HintStored() {
	h.stored.Add(1)
	h.m.stored.Inc()
}

// Run plans delivery rounds until ctx ends, then waits for the rounds in
// flight. With delivery off it returns at once.
func (h *Handoff) Run(ctx context.Context) {
	if !h.cfg.Deliver {
		return // hints are stored, never delivered
	}
	var rounds sync.WaitGroup
	defer rounds.Wait()
	h.findDelivered()
	tick := time.NewTicker(h.cfg.Interval)
	defer tick.Stop()
	// retry fires when an owner that only waits out a backoff or a
	// receiver's retry-after may go again, so pacing costs no more than the
	// receiver asked for.
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			h.closeEpisodes()
		case <-h.wake:
		case <-retry.C:
		case res := <-h.results:
			h.finish(res)
		}
		now := h.d.Now()
		owners := map[string]hints.Owner{}
		for owner, st := range h.d.Store.HintStats() {
			// A removed owner's hints go to its partitions' new owners
			// (retarget): deliverable whether or not it is up.
			owners[owner] = hints.Owner{Pending: st.Pending, Alive: h.d.Members.Removed(owner) || h.d.Members.Up(owner)}
		}
		started := h.planner.Plan(now.UnixNano(), owners)
		if at, ok := h.planner.Wake(now.UnixNano(), owners); ok {
			retry.Reset(time.Duration(at - now.UnixNano()))
		}
		for _, owner := range started {
			h.setActive(owner, true)
			if _, draining := h.drains[owner]; !draining {
				h.drains[owner] = &drain{start: now}
				if h.d.Members.Removed(owner) {
					h.log.Info("handoff started: the owner was removed from the ring; its hints go to its partitions' new owners",
						zap.String("owner", owner), zap.Int("pending", owners[owner].Pending))
				} else {
					h.log.Info("handoff started", zap.String("owner", owner), zap.Int("pending", owners[owner].Pending))
				}
			}
			rounds.Go(func() {
				res := h.round(ctx, owner)
				select {
				case h.results <- res:
				case <-ctx.Done():
				}
			})
		}
	}
}

// finish records a round's end, logging only when the state changes: a
// round that drained the owner's queue, the first failure of a streak, and
// the recovery after one.
func (h *Handoff) finish(res roundResult) {
	h.setActive(res.owner, false)
	d := h.drains[res.owner]
	if d == nil {
		d = &drain{start: h.d.Now()}
	}
	d.delivered += res.delivered
	for p := range res.partitions {
		h.toClose[p] = true
	}
	ok := res.err == nil
	h.planner.Done(res.owner, h.d.Now().UnixNano(), ok, int64(res.retryAfter))
	before := h.failuresOf(res.owner)
	h.mu.Lock()
	h.failures[res.owner] = h.planner.Failures(res.owner)
	h.mu.Unlock()
	switch {
	case !ok && before == 0:
		h.m.errors.WithLabelValues(res.owner).Inc()
		h.log.Warn("handoff failing; will retry", zap.String("owner", res.owner), zap.Int("delivered", d.delivered), zap.Error(res.err))
	case !ok:
		h.m.errors.WithLabelValues(res.owner).Inc()
	case res.retryAfter > 0:
		// Paced by the receiver: not a state change.
	default:
		if before > 0 {
			h.log.Info("handoff recovered", zap.String("owner", res.owner))
		}
		if h.d.Store.HintStats()[res.owner].Pending == 0 {
			h.log.Info("handoff complete", zap.String("owner", res.owner), zap.Int("delivered", d.delivered),
				zap.Duration("took", h.d.Now().Sub(d.start)))
			delete(h.drains, res.owner)
			h.closeEpisodes()
			return
		}
	}
	h.drains[res.owner] = d
}

// drain is one owner's catch-up, from the first round that found hints
// pending to the one that left none: what the start and complete log lines
// describe.
type drain struct {
	start     time.Time
	delivered int
}

// closeEpisodes deletes the hints of every partition none of whose hints is
// pending any more (see store.CloseHintEpisode).
func (h *Handoff) closeEpisodes() {
	for p := range h.toClose {
		closed, err := h.d.Store.CloseHintEpisode(p)
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				h.log.Warn("closing a hint episode", zap.Uint32("partition", p), zap.Error(err))
			}
			return
		}
		if closed {
			delete(h.toClose, p)
		}
	}
}

// findDelivered remembers, after a restart, the partitions whose delivered
// hints still wait for their episode to close.
func (h *Handoff) findDelivered() {
	for owner, st := range h.d.Store.HintStats() {
		if st.Delivered == 0 {
			continue
		}
		_ = h.d.Store.ScanHints(owner, nil, func(hn store.Hint) (bool, error) {
			if hn.Delivered {
				h.toClose[hn.Partition] = true
			}
			return true, nil
		})
	}
}

// round delivers owner's pending hints from the cursor on, batch after
// batch, until none is left, the owner asks for time, or a call fails. A
// crash of either side resumes from the cursor: a batch is marked delivered
// (and the cursor moved past it) only after the owner acknowledged it, and
// a batch delivered twice changes nothing at the owner (dvv.Sync).
func (h *Handoff) round(ctx context.Context, owner string) roundResult {
	res := roundResult{owner: owner, partitions: map[uint32]bool{}}
	cursor, err := h.d.Store.HintCursor(owner)
	if err != nil {
		res.err = err
		return res
	}
	wrapped := cursor == nil
	credit := h.cfg.BatchBytes
	deliver := h.send
	if h.d.Members.Removed(owner) {
		deliver = h.retarget
	}
	for ctx.Err() == nil {
		batch, last, err := h.collect(owner, cursor, credit)
		if err != nil {
			res.err = err
			return res
		}
		if len(batch) == 0 {
			if wrapped {
				return res
			}
			// Hints written before the cursor since the last pass.
			cursor, wrapped = nil, true
			continue
		}
		resp, err := deliver(ctx, owner, batch)
		if err != nil {
			res.err = err
			return res
		}
		if !resp.Accepted {
			h.m.paced.Inc()
			res.retryAfter = time.Duration(max(resp.RetryAfterMs, 1)) * time.Millisecond
			return res
		}
		n, err := h.d.Store.MarkDelivered(owner, batch, last)
		if err != nil {
			res.err = err
			return res
		}
		for _, hn := range batch {
			res.partitions[hn.Partition] = true
		}
		res.delivered += n
		h.m.delivered.Add(float64(n))
		cursor = last
		credit = int(min(max(resp.CreditBytes, h.cfg.minCredit()), int64(h.cfg.MaxBatchBytes)))
	}
	res.err = ctx.Err()
	return res
}

// collect reads the next batch of pending hints after cursor, up to
// maxBytes (at least one hint) and MaxBatchItems, and always within what
// the owner accepts in one message: its frame and element limits, which
// objects with many siblings reach long before the byte budget. last is
// the position of the last hint looked at, delivered ones included, for
// the cursor.
//
// A hint too large for any message on its own (merges can make one; the
// limits on client writes cannot) is passed over and kept: it is never
// deleted unacknowledged, and skipping it lets the hints behind it go.
func (h *Handoff) collect(owner string, cursor []byte, maxBytes int) ([]store.Hint, []byte, error) {
	var batch []store.Hint
	var last []byte
	size := 0
	msg := wire.Batch{MaxFrame: h.d.MaxFrame}
	err := h.d.Store.ScanHints(owner, cursor, func(hn store.Hint) (bool, error) {
		if !hn.Delivered {
			fits := msg.Fits(hn.Object, hn.Bucket, hn.Key)
			if len(batch) > 0 && (!fits || size+hn.Size > maxBytes) {
				return false, nil
			}
			if !fits {
				h.log.Warn("hint too large to hand off in any message; kept",
					zap.String("owner", owner), zap.Uint32("partition", hn.Partition), zap.String("bucket", hn.Bucket),
					zap.Binary("key", hn.Key), zap.Int("siblings", len(hn.Object.Siblings)), zap.Int("bytes", hn.Size))
				last = hn.Pos
				return true, nil
			}
			batch = append(batch, hn)
			size += hn.Size
			msg.Add(hn.Object, hn.Bucket, hn.Key)
		}
		last = hn.Pos
		return len(batch) < h.cfg.MaxBatchItems, nil
	})
	return batch, last, err
}

func (h *Handoff) send(ctx context.Context, owner string, batch []store.Hint) (wire.HandoffResp, error) {
	req := wire.HandoffReq{Items: make([]wire.HandoffItem, len(batch))}
	for i, hn := range batch {
		req.Items[i] = wire.HandoffItem{Partition: hn.Partition, Bucket: hn.Bucket, Key: hn.Key, Object: hn.Object}
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var resp wire.HandoffResp
	if err := h.d.Peers.Call(ctx, owner, wire.TypeHandoff, req, &resp); err != nil {
		return wire.HandoffResp{}, err
	}
	return resp, nil
}

// retarget delivers a batch of hints kept for owner, a member an operator
// removed from the ring, to the current primaries of each hint's
// partition, as this node's ring names them: every one of them gets the
// hinted object as a DVV sync (this node's own copy directly, the others
// by the handoff message the owner would have had), and the batch counts
// as acknowledged only once all of them acknowledged it. Then, as for any
// owner, the hints are marked delivered and go when their episode closes.
//
// Why no write can be lost: a hint is deleted only after every current
// primary of its key has the object synced in durably, and a sync never
// removes what the receiver had (it keeps every sibling either side has
// that the other's vector does not cover), is idempotent and commutative.
// So a primary that already held the write, or a later one, is unchanged
// or gains a sibling, never loses one; a batch sent twice (a crash before
// the mark, a primary that asked for time after others accepted) changes
// nothing the second time; and the order in which fallbacks, anti-entropy
// and clients reach a new primary does not matter. A primary that is down
// or refuses holds the batch back whole: the hints stay pending and the
// round is retried, never narrowed to the primaries that answered.
func (h *Handoff) retarget(ctx context.Context, owner string, batch []store.Hint) (wire.HandoffResp, error) {
	r := h.d.Members.Ring()
	n := h.d.Members.ReplicationFactor(r)
	byTarget := map[string][]store.Hint{}
	for _, hn := range batch {
		primaries, _ := r.Preference(hn.Partition, n)
		if len(primaries) == 0 {
			return wire.HandoffResp{}, fmt.Errorf("handoff: no owner of partition %d on the ring for the hints of removed %s", hn.Partition, owner)
		}
		for _, t := range primaries {
			if t != owner { // never, once removed; and never back to it
				byTarget[t] = append(byTarget[t], hn)
			}
		}
	}
	targets := slices.Sorted(maps.Keys(byTarget))
	credit := int64(math.MaxInt64)
	for _, t := range targets {
		if t == h.d.Name {
			if err := h.applyLocal(byTarget[t]); err != nil {
				return wire.HandoffResp{}, err
			}
			continue
		}
		if !h.d.Members.Up(t) {
			return wire.HandoffResp{}, fmt.Errorf("handoff: %s, a new owner of hints kept for removed %s, is down", t, owner)
		}
		resp, err := h.send(ctx, t, byTarget[t])
		if err != nil {
			return wire.HandoffResp{}, fmt.Errorf("handoff to %s, a new owner of hints kept for removed %s: %w", t, owner, err)
		}
		if !resp.Accepted {
			return resp, nil
		}
		credit = min(credit, resp.CreditBytes)
	}
	h.m.retargeted.Add(float64(len(batch)))
	return wire.HandoffResp{Accepted: true, Applied: len(batch), CreditBytes: credit}, nil
}

// applyLocal syncs hints into this node's own data, when it is one of
// their new owners, with one fsync before they count as acknowledged.
func (h *Handoff) applyLocal(batch []store.Hint) error {
	for _, hn := range batch {
		if err := h.syncInto(hn.Partition, hn.Bucket, hn.Key, hn.Object); err != nil {
			return err
		}
	}
	if err := h.d.Store.SyncWAL(); err != nil {
		return fmt.Errorf("%w: %w", cairn.ErrInternal, err)
	}
	return nil
}

// syncInto merges obj into this node's copy of the key, unsynced: the
// caller syncs the WAL once for its batch.
func (h *Handoff) syncInto(p uint32, bucket string, key []byte, obj dvv.Object) error {
	mode := h.d.Mode(bucket)
	_, err := h.d.Store.ModifyUnsynced(p, bucket, key, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		if found && mode.Descends(cur, obj) {
			return cur, false, nil
		}
		return mode.Sync(cur, obj), true, nil
	})
	if err != nil {
		return fmt.Errorf("%w: handoff write: %w", cairn.ErrInternal, err)
	}
	return nil
}

func (h *Handoff) setActive(owner string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if on {
		h.active[owner] = true
	} else {
		delete(h.active, owner)
	}
}

func (h *Handoff) isActive(owner string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active[owner]
}

func (h *Handoff) failuresOf(owner string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failures[owner]
}
