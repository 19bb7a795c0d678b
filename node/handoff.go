package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/hints"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// HandoffConfig paces hinted handoff, on both sides.
type HandoffConfig struct {
	// Interval is how often a node looks for owners to deliver hints to,
	// besides when membership says a node came back.
	Interval time.Duration `yaml:"interval"`
	// MaxConcurrent is how many owners a node delivers to at once.
	MaxConcurrent int `yaml:"max_concurrent"`
	// BatchBytes is the size of the first batch of a round; later batches
	// follow the receiver's credit, up to MaxBatchBytes.
	BatchBytes    int `yaml:"batch_bytes"`
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// MaxBatchItems bounds the objects in one batch.
	MaxBatchItems int `yaml:"max_batch_items"`
	// ReceiveBytesPerSecond and ReceiveBurstBytes are the receiver's pace:
	// all the handoff a node accepts, from every fallback together. The
	// burst is capped at one second's worth.
	ReceiveBytesPerSecond int64 `yaml:"receive_bytes_per_second"`
	ReceiveBurstBytes     int64 `yaml:"receive_burst_bytes"`
	// RetryBase and RetryMax bound the backoff after a failed round.
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
}

// DefaultHandoffConfig returns the defaults each field documents: rounds
// every 5 s, two owners at once, 256 KiB first batches up to 4 MiB, 1000
// objects a batch, 16 MiB/s accepted per node with 4 MiB bursts, retries
// from 1 s to 1 min.
func DefaultHandoffConfig() HandoffConfig {
	return HandoffConfig{
		Interval: 5 * time.Second, MaxConcurrent: 2,
		BatchBytes: 256 << 10, MaxBatchBytes: 4 << 20, MaxBatchItems: 1000,
		ReceiveBytesPerSecond: 16 << 20, ReceiveBurstBytes: 4 << 20,
		RetryBase: time.Second, RetryMax: time.Minute,
	}
}

func (c HandoffConfig) validate() []error {
	var errs []error
	if c.Interval <= 0 || c.MaxConcurrent < 1 || c.MaxBatchItems < 1 {
		errs = append(errs, fmt.Errorf("handoff: interval, max_concurrent and max_batch_items must be positive"))
	}
	if c.BatchBytes < 1 || c.MaxBatchBytes < c.BatchBytes {
		errs = append(errs, fmt.Errorf("handoff: batch_bytes must be positive and at most max_batch_bytes"))
	}
	if c.ReceiveBytesPerSecond < 1 || c.ReceiveBurstBytes < 1 {
		errs = append(errs, fmt.Errorf("handoff: receive_bytes_per_second and receive_burst_bytes must be positive"))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("handoff: retry_base must be positive and at most retry_max"))
	}
	return errs
}

// handoffCallTimeout bounds one batch's round trip, the owner's fsync
// included.
const handoffCallTimeout = 10 * time.Second

// handoff delivers the hints this node keeps to their owners, and paces the
// handoff it receives. One goroutine (run) plans rounds; each round to one
// owner runs on a goroutine of its own; all of them end at Shutdown.
type handoff struct {
	n   *Node
	cfg HandoffConfig

	wake    chan struct{}
	results chan roundResult

	// Owned by run.
	planner hints.Planner
	toClose map[uint32]bool // partitions whose delivered hints wait for their episode to close
	drains  map[string]*drain

	mu       sync.Mutex // guards what admin requests read
	failures map[string]int
	active   map[string]bool

	throttleMu sync.Mutex
	throttle   *hints.Throttle

	m handoffMetrics
}

type roundResult struct {
	owner      string
	delivered  int
	partitions map[uint32]bool
	retryAfter time.Duration
	err        error
}

func newHandoff(n *Node) *handoff {
	cfg := n.cfg.Handoff
	h := &handoff{
		n: n, cfg: cfg,
		wake:    make(chan struct{}, 1),
		results: make(chan roundResult, cfg.MaxConcurrent),
		planner: hints.Planner{MaxConcurrent: cfg.MaxConcurrent, BackoffBase: int64(cfg.RetryBase), BackoffMax: int64(cfg.RetryMax)},
		toClose: map[uint32]bool{}, drains: map[string]*drain{}, failures: map[string]int{}, active: map[string]bool{},
		// A burst never exceeds one second's worth, so a low rate is a low
		// rate from the first batch.
		throttle: hints.NewThrottle(cfg.ReceiveBytesPerSecond,
			min(cfg.ReceiveBurstBytes, max(cfg.ReceiveBytesPerSecond, int64(cfg.BatchBytes)/4)), int64(cfg.BatchBytes)/4),
	}
	h.m = newHandoffMetrics(n)
	return h
}

// poke asks for a planning pass now (a node came back).
func (h *handoff) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run plans delivery rounds until ctx ends, then waits for the rounds in
// flight.
func (h *handoff) run(ctx context.Context) {
	if !h.n.cfg.HintedHandoff {
		return // hints are stored, never delivered (Config.HintedHandoff)
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
		now := h.n.now()
		owners := map[string]hints.Owner{}
		for owner, st := range h.n.store.HintStats() {
			_, member := h.n.members.Addr(owner)
			owners[owner] = hints.Owner{Pending: st.Pending, Alive: member && h.n.up(owner)}
		}
		started := h.planner.Plan(now.UnixNano(), owners)
		if at, ok := h.planner.Wake(now.UnixNano(), owners); ok {
			retry.Reset(time.Duration(at - now.UnixNano()))
		}
		for _, owner := range started {
			h.setActive(owner, true)
			if _, draining := h.drains[owner]; !draining {
				h.drains[owner] = &drain{start: now}
				h.n.log.Info("handoff started", zap.String("owner", owner), zap.Int("pending", owners[owner].Pending))
			}
			rounds.Add(1)
			go func() {
				defer rounds.Done()
				res := h.round(ctx, owner)
				select {
				case h.results <- res:
				case <-ctx.Done():
				}
			}()
		}
	}
}

// finish records a round's end, logging only when the state changes: a
// round that drained the owner's queue, the first failure of a streak, and
// the recovery after one.
func (h *handoff) finish(res roundResult) {
	h.setActive(res.owner, false)
	d := h.drains[res.owner]
	if d == nil {
		d = &drain{start: h.n.now()}
	}
	d.delivered += res.delivered
	for p := range res.partitions {
		h.toClose[p] = true
	}
	ok := res.err == nil
	h.planner.Done(res.owner, h.n.now().UnixNano(), ok, int64(res.retryAfter))
	before := h.failuresOf(res.owner)
	h.mu.Lock()
	h.failures[res.owner] = h.planner.Failures(res.owner)
	h.mu.Unlock()
	switch {
	case !ok && before == 0:
		h.m.errors.WithLabelValues(res.owner).Inc()
		h.n.log.Warn("handoff failing; will retry", zap.String("owner", res.owner), zap.Int("delivered", d.delivered), zap.Error(res.err))
	case !ok:
		h.m.errors.WithLabelValues(res.owner).Inc()
	case res.retryAfter > 0:
		// Paced by the receiver: not a state change.
	default:
		if before > 0 {
			h.n.log.Info("handoff recovered", zap.String("owner", res.owner))
		}
		if h.n.store.HintStats()[res.owner].Pending == 0 {
			h.n.log.Info("handoff complete", zap.String("owner", res.owner), zap.Int("delivered", d.delivered),
				zap.Duration("took", h.n.now().Sub(d.start)))
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
func (h *handoff) closeEpisodes() {
	for p := range h.toClose {
		closed, err := h.n.store.CloseHintEpisode(p)
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				h.n.log.Warn("closing a hint episode", zap.Uint32("partition", p), zap.Error(err))
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
func (h *handoff) findDelivered() {
	for owner, st := range h.n.store.HintStats() {
		if st.Delivered == 0 {
			continue
		}
		_ = h.n.store.ScanHints(owner, nil, func(hn store.Hint) (bool, error) {
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
func (h *handoff) round(ctx context.Context, owner string) roundResult {
	res := roundResult{owner: owner, partitions: map[uint32]bool{}}
	cursor, err := h.n.store.HintCursor(owner)
	if err != nil {
		res.err = err
		return res
	}
	wrapped := cursor == nil
	credit := h.cfg.BatchBytes
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
		resp, err := h.send(ctx, owner, batch)
		if err != nil {
			res.err = err
			return res
		}
		if !resp.Accepted {
			h.m.paced.Inc()
			res.retryAfter = time.Duration(max(resp.RetryAfterMs, 1)) * time.Millisecond
			return res
		}
		n, err := h.n.store.MarkDelivered(owner, batch, last)
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
		credit = int(min(max(resp.CreditBytes, int64(h.cfg.BatchBytes)/4), int64(h.cfg.MaxBatchBytes)))
	}
	res.err = ctx.Err()
	return res
}

// collect reads the next batch of pending hints after cursor, up to
// maxBytes (at least one hint) and MaxBatchItems. last is the position of
// the last hint looked at, delivered ones included, for the cursor.
func (h *handoff) collect(owner string, cursor []byte, maxBytes int) ([]store.Hint, []byte, error) {
	var batch []store.Hint
	var last []byte
	size := 0
	err := h.n.store.ScanHints(owner, cursor, func(hn store.Hint) (bool, error) {
		if !hn.Delivered {
			if len(batch) > 0 && size+hn.Size > maxBytes {
				return false, nil
			}
			batch = append(batch, hn)
			size += hn.Size
		}
		last = hn.Pos
		return len(batch) < h.cfg.MaxBatchItems, nil
	})
	return batch, last, err
}

func (h *handoff) send(ctx context.Context, owner string, batch []store.Hint) (wire.HandoffResp, error) {
	addr, ok := h.n.members.Addr(owner)
	if !ok {
		return wire.HandoffResp{}, fmt.Errorf("%w: no address for %s", cairn.ErrUnavailable, owner)
	}
	req := wire.HandoffReq{Items: make([]wire.HandoffItem, len(batch))}
	for i, hn := range batch {
		req.Items[i] = wire.HandoffItem{Partition: hn.Partition, Bucket: hn.Bucket, Key: hn.Key, Object: hn.Object}
	}
	ctx, cancel := context.WithTimeout(ctx, handoffCallTimeout)
	defer cancel()
	var resp wire.HandoffResp
	if err := h.n.peers.Call(ctx, addr, wire.TypeHandoff, req, &resp); err != nil {
		if transport.IsDialError(err) {
			h.n.markDown(owner, err)
		}
		return wire.HandoffResp{}, err
	}
	return resp, nil
}

// serveHandoff applies a batch of hints kept for this node, at the pace
// this node sets: a batch the throttle cannot admit now is refused whole
// with the time to wait, and an admitted one comes back with an invitation
// for the next batch's size.
func (n *Node) serveHandoff(ctx context.Context, peer transport.Peer, req wire.HandoffReq) (wire.HandoffResp, error) {
	bytes := int64(0)
	for _, it := range req.Items {
		if err := n.checkReplicaRequest(peer, it.Partition, it.Bucket, it.Key); err != nil {
			return wire.HandoffResp{}, err
		}
		bytes += int64(len(it.Bucket) + len(it.Key))
		for _, s := range it.Object.Siblings {
			bytes += int64(len(s.Value))
		}
	}
	h := n.handoff
	now := n.now().UnixNano()
	h.throttleMu.Lock()
	ok, retry := h.throttle.Admit(bytes, now)
	credit := h.throttle.Credit(now)
	h.throttleMu.Unlock()
	if !ok {
		h.m.throttled.Inc()
		return wire.HandoffResp{RetryAfterMs: uint32(min(time.Duration(retry), time.Minute) / time.Millisecond), CreditBytes: credit}, nil
	}
	for _, it := range req.Items {
		if err := ctx.Err(); err != nil {
			return wire.HandoffResp{}, fmt.Errorf("%w: %v", cairn.ErrTimeout, err)
		}
		_, err := n.store.ModifyUnsynced(it.Partition, it.Bucket, it.Key, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
			if found && cur.Descends(it.Object) {
				return cur, false, nil
			}
			return dvv.Sync(cur, it.Object), true, nil
		})
		if err != nil {
			return wire.HandoffResp{}, fmt.Errorf("%w: handoff write: %w", cairn.ErrInternal, err)
		}
	}
	// One fsync for the batch, before the acknowledgement that lets the
	// sender forget it.
	if err := n.store.SyncWAL(); err != nil {
		return wire.HandoffResp{}, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
	}
	h.m.received.Add(float64(len(req.Items)))
	h.m.receivedBytes.Add(float64(bytes))
	return wire.HandoffResp{Accepted: true, Applied: len(req.Items), CreditBytes: credit}, nil
}

func (n *Node) serveHints() wire.HintsResp {
	resp := wire.HintsResp{Node: n.cfg.Name}
	now := n.now().UnixNano()
	for owner, st := range n.store.HintStats() {
		o := wire.HintOwner{Owner: owner, Pending: st.Pending, Delivered: st.Delivered, Bytes: st.Bytes,
			Delivering: n.handoff.isActive(owner), Failures: n.handoff.failuresOf(owner)}
		if st.BacklogSince > 0 {
			o.BacklogMs = (now - st.BacklogSince) / 1e6
		}
		resp.Owners = append(resp.Owners, o)
	}
	return resp
}

func (h *handoff) setActive(owner string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if on {
		h.active[owner] = true
	} else {
		delete(h.active, owner)
	}
}

func (h *handoff) isActive(owner string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active[owner]
}

func (h *handoff) failuresOf(owner string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failures[owner]
}

type handoffMetrics struct {
	stored        prometheus.Counter
	delivered     prometheus.Counter
	errors        *prometheus.CounterVec
	paced         prometheus.Counter
	received      prometheus.Counter
	receivedBytes prometheus.Counter
	throttled     prometheus.Counter
}

func newHandoffMetrics(n *Node) handoffMetrics {
	m := handoffMetrics{
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_hints_stored_total",
			Help: "Writes this node stored as a hint while standing in for an unreachable primary."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_hints_delivered_total",
			Help: "Hints this node delivered and had acknowledged by their owner."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_hint_delivery_errors_total",
			Help: "Handoff rounds that failed, by owner."}, []string{"owner"}),
		paced: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_paced_total",
			Help: "Batches this node held back because the receiving owner asked for time."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_received_total",
			Help: "Hinted objects this node received from fallbacks and applied."}),
		receivedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_received_bytes_total",
			Help: "Bytes of hinted objects this node received and applied."}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_throttled_total",
			Help: "Handoff batches this node refused for now to pace its own catch-up."}),
	}
	n.metrics.registry.MustRegister(m.stored, m.delivered, m.errors, m.paced, m.received, m.receivedBytes, m.throttled,
		hintQueues{n})
	return m
}

// hintQueues reports each owner's queue at scrape time, from the store's
// in-memory account (no scan).
type hintQueues struct{ n *Node }

var (
	hintsPendingDesc = prometheus.NewDesc("cairn_hints_pending", "Hints this node keeps for an owner that the owner has not acknowledged.", []string{"owner"}, nil)
	hintsBytesDesc   = prometheus.NewDesc("cairn_hints_bytes", "Bytes of the hints this node keeps for an owner.", []string{"owner"}, nil)
	hintsAgeDesc     = prometheus.NewDesc("cairn_hints_backlog_age_seconds",
		"Time since the owner's pending hints last went from none to some: an upper bound on the oldest pending hint's age.", []string{"owner"}, nil)
)

func (q hintQueues) Describe(ch chan<- *prometheus.Desc) {
	ch <- hintsPendingDesc
	ch <- hintsBytesDesc
	ch <- hintsAgeDesc
}

func (q hintQueues) Collect(ch chan<- prometheus.Metric) {
	now := q.n.now().UnixNano()
	for owner, st := range q.n.store.HintStats() {
		ch <- prometheus.MustNewConstMetric(hintsPendingDesc, prometheus.GaugeValue, float64(st.Pending), owner)
		ch <- prometheus.MustNewConstMetric(hintsBytesDesc, prometheus.GaugeValue, float64(st.Bytes), owner)
		age := 0.0
		if st.BacklogSince > 0 {
			age = float64(now-st.BacklogSince) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(hintsAgeDesc, prometheus.GaugeValue, age, owner)
	}
}
