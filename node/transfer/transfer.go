package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/pace"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/zap"
)

// The states of a stream, as `cairn transfers` shows them.
const (
	StateWaiting   = "waiting"
	StateStreaming = "streaming"
	StateDone      = "done"
	StateFailed    = "failed"
)

// Transfer sends the partitions this node is the designated sender of to
// their targets, and receives the partitions this node is a target of.
// Its methods are safe for concurrent use.
type Transfer struct {
	cfg Config
	d   Deps
	log *zap.Logger
	m   *metrics

	paceMu sync.Mutex
	pace   *pace.Bucket

	mu   sync.Mutex
	jobs map[jobKey]*job // this change's streams from this node
	// known is the change every live node was last seen to know, and
	// since when (see Config.Settle).
	known      uint64
	knownSince time.Time
	// inFlight is the change last seen in flight; drop lists the
	// partitions it moved away from this node, to drop once the ring of
	// version dropAt is in effect everywhere (see dropMoved).
	inFlight *ring.Placement
	drop     []uint32
	dropAt   uint64

	ctx  context.Context // Run's; the streams end with it
	poke chan struct{}
	wg   sync.WaitGroup // the streams
}

type jobKey struct {
	p  uint32
	to string
}

// job is one stream; fields after key are guarded by Transfer.mu.
type job struct {
	key        jobKey
	next       uint64
	state      string
	running    bool
	keys       int64 // done, this run and the runs before it
	bytes      int64
	totalKeys  int64
	totalBytes int64
	started    time.Time
	runKeys    int64 // done in this run, for the rate
	runBytes   int64
	ended      time.Time
	retryAt    time.Time
	err        string
}

// New returns a Transfer; Run runs it. It serves pushes and dones
// whether or not Run runs.
func New(cfg Config, d Deps) (*Transfer, error) {
	d, err := d.withDefaults()
	if err := errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	bucket, err := pace.NewBucket(float64(cfg.BytesPerSecond), cfg.BytesPerSecond)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	return &Transfer{cfg: cfg, d: d, log: d.Logger.Named("transfer"), m: m, pace: bucket,
		jobs: map[jobKey]*job{}, poke: make(chan struct{}, 1)}, nil
}

// Poke makes the loop look now: membership changed.
func (t *Transfer) Poke() {
	select {
	case t.poke <- struct{}{}:
	default:
	}
}

// Run looks for partitions to send every Interval and when poked, until
// ctx ends; then it stops every stream (each keeps its cursor) and waits
// for them. Call it once.
func (t *Transfer) Run(ctx context.Context) {
	t.ctx = ctx
	defer t.wg.Wait()
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		t.plan()
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		case <-t.poke:
		}
	}
}

// plan starts the streams this node owes, up to MaxConcurrent, and makes
// a joining node active once its change is complete.
func (t *Transfer) plan() {
	pl := t.d.Members.Placement()
	if pl == nil {
		return
	}
	flipped, moving := pl.Flips()
	t.m.flipped.Set(float64(flipped))
	t.m.moving.Set(float64(moving))
	if t.d.Members.Activate() {
		t.log.Info("every partition received and flipped: this node is active",
			zap.Strings("members", pl.Next().Members()))
	}
	if t.d.Members.Depart() {
		t.log.Info("every partition moved away and flipped: this node left the ring",
			zap.Strings("members", pl.Next().Members()))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	next := pl.Next().Version()
	for k, j := range t.jobs {
		if j.next != next && !j.running {
			delete(t.jobs, k) // a change that is over
		}
	}
	now := t.d.Now()
	t.dropMoved(pl)
	if !pl.Changing() || !t.d.Members.PeersKnow(next) {
		t.known = 0
		return
	}
	if t.known != next {
		t.known, t.knownSince = next, now
		t.log.Info("every live node knows the change; streams start once writes routed before it are done",
			zap.Strings("next", pl.Next().Members()), zap.Duration("settle", t.cfg.Settle))
	}
	if now.Sub(t.knownSince) < t.cfg.Settle {
		return
	}
	running := 0
	for _, j := range t.jobs {
		if j.running {
			running++
		}
	}
	for p := range uint32(pl.Cur().Partitions()) {
		if running >= t.cfg.MaxConcurrent {
			return
		}
		if pl.Flipped(p) || !t.sender(pl.Sources(p)) {
			continue
		}
		for _, to := range pl.Targets(p) {
			if running >= t.cfg.MaxConcurrent {
				return
			}
			k := jobKey{p, to}
			j := t.jobs[k]
			if t.d.Members.Holds(to, next, p) {
				if j != nil && !j.running && j.state != StateDone {
					j.state = StateDone
				}
				continue
			}
			if j != nil && (j.running || j.state == StateDone || now.Before(j.retryAt)) {
				continue
			}
			if !t.d.Members.Up(to) {
				if j == nil {
					t.jobs[k] = &job{key: k, next: next, state: StateWaiting, err: "target down"}
				}
				continue
			}
			if j == nil {
				j = &job{key: k, next: next}
				t.jobs[k] = j
			}
			j.state, j.running, j.err, j.started = StateStreaming, true, "", now
			j.runKeys, j.runBytes = 0, 0
			running++
			t.m.active.Inc()
			t.wg.Add(1)
			go t.run(j)
		}
	}
}

// dropMoved drops this node's copies of the partitions a completed change
// moved away from it. A change completes only when its joining node saw
// every partition flipped (every next owner confirmed) and made itself
// active, which makes the ring it moved to the one in effect: so when the
// ring in effect becomes the Next of the change last seen in flight, the
// partitions this node was leaving are held by their next owners. It drops
// them once every live peer builds that ring too, so no node reads them
// here any more and every write goes to their new owners. A node that
// restarts in between forgets them and keeps the copies: safe, only space
// is lost.
func (t *Transfer) dropMoved(pl *ring.Placement) {
	if pl.Changing() {
		t.inFlight = pl
		return
	}
	if last := t.inFlight; last != nil && pl.Cur().Version() == last.Next().Version() {
		t.inFlight = nil
		t.drop, t.dropAt = nil, last.Next().Version()
		for p := range uint32(last.Cur().Partitions()) {
			if slices.Contains(last.Leaving(p), t.d.Name) {
				t.drop = append(t.drop, p)
			}
		}
	}
	if len(t.drop) == 0 || pl.Cur().Version() != t.dropAt || !t.d.Members.PeersAt(t.dropAt) {
		return
	}
	for len(t.drop) > 0 {
		p := t.drop[0]
		if slices.Contains(pl.Sources(p), t.d.Name) {
			t.drop = t.drop[1:] // owned again: keep it
			continue
		}
		if err := t.d.Store.DropPartition(p); err != nil {
			t.log.Warn("transfer: cannot drop a partition moved away; will retry", zap.Uint32("partition", p), zap.Error(err))
			return
		}
		t.m.dropped.Inc()
		t.drop = t.drop[1:]
	}
	t.log.Info("dropped the copies of the partitions the change moved away", zap.Uint64("ring_version", t.dropAt))
}

// sender reports whether this node sends a partition whose current owners
// are sources: it is the first of them that is up. Two nodes that
// disagree about liveness may both send; the target syncs, so that costs
// bandwidth only.
func (t *Transfer) sender(sources []string) bool {
	for _, s := range sources {
		if s == t.d.Name {
			return true
		}
		if t.d.Members.Up(s) {
			return false
		}
	}
	return false
}

// run streams one partition to one target and records how it went.
func (t *Transfer) run(j *job) {
	defer t.wg.Done()
	defer t.m.active.Dec()
	err := t.stream(j)
	t.mu.Lock()
	j.running = false
	j.ended = t.d.Now()
	if err != nil {
		j.state, j.err, j.retryAt = StateFailed, err.Error(), j.ended.Add(t.cfg.RetryAfter)
	} else {
		j.state = StateDone
	}
	keys, bytes, secs := j.keys, j.bytes, j.ended.Sub(j.started).Seconds()
	t.mu.Unlock()
	if err != nil {
		t.m.streams.WithLabelValues("failed").Inc()
		if t.ctx.Err() == nil {
			t.log.Warn("transfer failed; will resume from its cursor", zap.Uint32("partition", j.key.p),
				zap.String("to", j.key.to), zap.Int64("keys", keys), zap.Error(err))
		}
		return
	}
	t.m.streams.WithLabelValues("done").Inc()
	t.log.Info("transfer done", zap.Uint32("partition", j.key.p), zap.String("to", j.key.to),
		zap.Int64("keys", keys), zap.Int64("bytes", bytes), zap.Float64("seconds", secs))
	t.Poke()
}

// cursor is where a stream resumes: after (Bucket, Key), with Keys and
// Bytes already sent.
type cursor struct {
	Bucket string `msgpack:"b"`
	Key    []byte `msgpack:"k"`
	Keys   int64  `msgpack:"n"`
	Bytes  int64  `msgpack:"s"`
}

func cursorName(next uint64, p uint32, to string) string {
	return fmt.Sprintf("transfer/%016x/%d/%s", next, p, to)
}

func (t *Transfer) loadCursor(name string) (cursor, error) {
	raw, found, err := t.d.Store.GetMeta(name)
	if err != nil || !found {
		return cursor{}, err
	}
	var c cursor
	if err := msgpack.Unmarshal(raw, &c); err != nil {
		// A cursor this node wrote and cannot read: start over, which
		// only costs a resend.
		t.log.Warn("transfer: unreadable cursor; starting the partition over", zap.String("cursor", name), zap.Error(err))
		return cursor{}, nil
	}
	return c, nil
}

// stream sends partition j.key.p, from its cursor on, as of a snapshot,
// then tells the target it is complete.
func (t *Transfer) stream(j *job) error {
	p, to := j.key.p, j.key.to
	name := cursorName(j.next, p, to)
	cur, err := t.loadCursor(name)
	if err != nil {
		return err
	}
	sn, err := t.d.Store.CutSnapshot(func() {})
	if err != nil {
		return err
	}
	defer sn.Close()
	totalKeys, totalBytes, err := sn.PartitionSize(p)
	if err != nil {
		return err
	}
	t.mu.Lock()
	j.keys, j.bytes = cur.Keys, cur.Bytes
	j.totalKeys, j.totalBytes = max(totalKeys, cur.Keys), max(totalBytes, cur.Bytes)
	t.mu.Unlock()
	t.log.Info("transfer started", zap.Uint32("partition", p), zap.String("to", to),
		zap.Int64("total_keys", totalKeys), zap.Int64("resumed_after_keys", cur.Keys))
	b := &batch{msg: wire.Batch{MaxFrame: t.d.MaxFrame}}
	saved := cur.Keys > 0
	// flush pushes the batch; more says others follow, and only then is
	// the cursor saved (an fsync): a partition sent in one batch needs
	// none, since a stream cut short of its done starts that batch over.
	flush := func(more bool) error {
		if len(b.objects) == 0 {
			return nil
		}
		if err := t.push(j, b); err != nil {
			return err
		}
		last := b.objects[len(b.objects)-1]
		cur = cursor{Bucket: last.Bucket, Key: last.Key, Keys: cur.Keys + int64(len(b.objects)), Bytes: cur.Bytes + int64(b.size)}
		if more {
			raw, err := msgpack.Marshal(&cur)
			if err != nil {
				return err
			}
			if err := t.d.Store.PutMeta(name, raw); err != nil {
				return err
			}
			saved = true
		}
		t.mu.Lock()
		j.keys, j.bytes = cur.Keys, cur.Bytes
		j.runKeys += int64(len(b.objects))
		j.runBytes += int64(b.size)
		t.mu.Unlock()
		*b = batch{msg: wire.Batch{MaxFrame: t.d.MaxFrame}}
		return nil
	}
	err = sn.ScanPartitionAfter(p, cur.Bucket, cur.Key, func(bucket string, key []byte, obj dvv.Object, size int) (bool, error) {
		if err := t.ctx.Err(); err != nil {
			return false, err
		}
		if len(b.objects) > 0 && (!b.msg.Fits(obj, bucket, key) || len(b.objects) >= t.cfg.BatchKeys || b.size+size > t.cfg.BatchBytes) {
			if err := flush(true); err != nil {
				return false, err
			}
		}
		if !b.msg.Fits(obj, bucket, key) {
			// Merges can make an object no message carries; anti-entropy
			// cannot move it either. Only a client write shrinks it.
			t.log.Warn("transfer: object too large to send in any message; left out",
				zap.Uint32("partition", p), zap.String("bucket", bucket), zap.Binary("key", key))
			return true, nil
		}
		b.objects = append(b.objects, wire.AAEObject{Bucket: bucket, Key: key, Object: obj})
		b.size += size
		b.msg.Add(obj, bucket, key)
		return true, nil
	})
	if err == nil {
		err = flush(false)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.CallTimeout)
	defer cancel()
	if err := t.d.Peers.Call(ctx, to, wire.TypeTransferDone,
		wire.TransferDoneReq{Partition: p, Next: j.next, Keys: cur.Keys, Bytes: cur.Bytes}, &wire.TransferDoneResp{}); err != nil {
		return fmt.Errorf("done: %w", err)
	}
	if !saved {
		return nil
	}
	if err := t.d.Store.DeleteMeta(name); err != nil {
		t.log.Warn("transfer: cannot delete a finished cursor", zap.String("cursor", name), zap.Error(err))
	}
	return nil
}

type batch struct {
	objects []wire.AAEObject
	size    int
	msg     wire.Batch
}

// push paces, then sends one batch and waits for the target's
// acknowledgement (after its fsync).
func (t *Transfer) push(j *job, b *batch) error {
	t.paceMu.Lock()
	wait := time.Duration(t.pace.Take(t.d.Now().UnixNano(), int64(b.size)))
	t.paceMu.Unlock()
	if wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-t.ctx.Done():
			timer.Stop()
			return t.ctx.Err()
		case <-timer.C:
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.CallTimeout)
	defer cancel()
	var resp wire.TransferPushResp
	if err := t.d.Peers.Call(ctx, j.key.to, wire.TypeTransferPush,
		wire.TransferPushReq{Partition: j.key.p, Next: j.next, Objects: b.objects}, &resp); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	t.m.keys.Add(float64(len(b.objects)))
	t.m.bytes.Add(float64(b.size))
	return nil
}

// Local describes this node's streams of the change in flight, by
// partition then target.
func (t *Transfer) Local() []wire.TransferInfo {
	now := t.d.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]wire.TransferInfo, 0, len(t.jobs))
	for _, j := range t.jobs {
		info := wire.TransferInfo{Partition: j.key.p, From: t.d.Name, To: j.key.to, State: j.state,
			Keys: j.keys, Bytes: j.bytes, TotalKeys: j.totalKeys, TotalBytes: j.totalBytes, EtaMs: -1, Error: j.err}
		end := now
		if !j.running {
			end = j.ended
		}
		if secs := end.Sub(j.started).Seconds(); secs > 0 && !j.started.IsZero() {
			info.KeysPerSec = float64(j.runKeys) / secs
			info.BytesPerSec = float64(j.runBytes) / secs
		}
		switch {
		case j.state == StateDone:
			info.EtaMs = 0
		case j.running && info.BytesPerSec > 0:
			info.EtaMs = int64(float64(max(j.totalBytes-j.bytes, 0)) / info.BytesPerSec * 1000)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b wire.TransferInfo) int {
		if a.Partition != b.Partition {
			return int(a.Partition) - int(b.Partition)
		}
		return compareStrings(a.To, b.To)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
