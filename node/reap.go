package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Reaping tombstones: why a reaped key cannot come back.
//
// A delete leaves a tombstone: an object whose siblings are all
// tombstones, with the version vector of everything the delete replaced.
// While it exists, every older version of the key that turns up (a
// replica that missed the delete, a hint, an anti-entropy repair, a
// transfer) merges into it and loses. Once it is gone, an older version
// that turns up is the only copy anyone has, and reads find it: the
// deleted value is back. So a tombstone is removed only when no older
// version can turn up anywhere, which the reaper establishes like this.
//
//  1. Only the partition's owner (its first primary) reaps it, once per
//     interval, and only tombstones older than the bucket's delete_grace
//     (its newest stamp, a hybrid-clock time), and never sooner than the
//     node's max_request_timeout: every request made before the delete,
//     and with it its replica writes, read repairs and hint writes, is
//     over by then. (A message the network holds back longer than that
//     while its connection stays open is outside the argument.)
//  2. It reaps only while the cluster is settled: no membership change in
//     flight (no transfer can be carrying the key), and every member of
//     the ring up and answering. A member that is down could hold an
//     older copy or a hint of the key; while it is down nothing is reaped,
//     so a primary down during the delete and back after the grace first
//     takes the tombstone (read repair, anti-entropy), then the key is
//     reaped with it.
//  3. It asks every member (check): does your copy of the key differ from
//     this tombstone, or do you hold a hint of the key for anyone? A
//     member answers clear only when its copy is absent or exactly the
//     tombstone and it holds no hint. Any other answer keeps the key for a
//     later pass: a stale replica is repaired by anti-entropy first, a
//     hint is delivered first. With every copy and hint in the cluster
//     accounted for, no older version exists outside the tombstone.
//  4. Then every member removes the key if its copy is still exactly that
//     tombstone (reap). A write that raced the check made a different
//     object and is kept. A member that misses the reap keeps the
//     tombstone, which anti-entropy may copy back to the others: a
//     tombstone again, reaped by a later pass.
//  5. A write to a reaped key must not reuse the dots of its history
//     (DESIGN section 3, MUST): the store keeps the highest counter the
//     partition's actor minted in a reaped tombstone, and mints above it
//     (store/reap.go).
//  6. A data directory restored from a copy older than a reap holds
//     versions the cluster forgot: step 3 checked the directory as it was
//     then, not the copy. Every check a member answers bumps a counter in
//     its directory (synced before the answer), and the coordinator
//     records the count it was told, with the directory's identity. A node
//     starting on a copy of its directory asks its peers what they
//     recorded for that directory; a count above its own means the copy
//     predates a check, and the node refuses to start. A check that finds
//     the same stops the node. The operator starts it empty instead (a new
//     directory has a new identity) and it takes its data from its peers.
//
// What is left: a member removed from the ring while holding a copy is
// not asked, and must not be brought back with its old directory; a copy
// of a directory restored while every peer that recorded its count is
// down starts (it is checked again by the next reap check).

// ReapConfig paces the reaping of tombstones.
type ReapConfig struct {
	// Interval is the time between two passes over the partitions this
	// node owns. Zero turns reaping off on this node.
	Interval time.Duration `yaml:"interval"`
	// KeysPerSecond bounds the keys this node reaps per second.
	KeysPerSecond float64 `yaml:"keys_per_second"`
}

// DefaultReapConfig passes over the partitions every ten minutes (a pass
// reads every key of the buckets with a grace, so it is not free), at
// most 2,000 keys per second.
func DefaultReapConfig() ReapConfig {
	return ReapConfig{Interval: 10 * time.Minute, KeysPerSecond: 2000}
}

// Validate reports settings the reaper cannot run with.
func (c ReapConfig) Validate() error {
	if c.Interval < 0 {
		return errors.New("reap interval must not be negative")
	}
	if c.Interval > 0 && c.KeysPerSecond <= 0 {
		return errors.New("reap rate must be positive")
	}
	return nil
}

// Bounds of one reap round: items per check and their encoded bytes, well
// within a frame.
const (
	reapBatchKeys  = 256
	reapBatchBytes = 256 << 10
	// reapCompactAfter is how many keys this node reaps before it compacts
	// the object keyspace, so the space comes back to the file system
	// rather than whenever pebble's own compactions reach it.
	reapCompactAfter = 1000
	// reapCallTimeout bounds each check and reap call.
	reapCallTimeout = 10 * time.Second
)

type reaper struct {
	n     *Node
	cfg   ReapConfig
	limit *rate.Limiter

	reaped      prometheus.Counter
	rounds      *prometheus.CounterVec
	compactions prometheus.Counter

	mu      sync.Mutex
	blocked string // why the last pass could not run; "" when it ran
	seen    map[string]witness
	// sinceCompact counts keys reaped since the last compaction.
	sinceCompact int
}

// witness is a peer's witness count and the directory it counts for.
type witness struct {
	dir   string
	count uint64
}

func newReaper(n *Node, cfg ReapConfig) *reaper {
	r := &reaper{n: n, cfg: cfg, seen: map[string]witness{}}
	if cfg.KeysPerSecond > 0 {
		r.limit = rate.NewLimiter(rate.Limit(cfg.KeysPerSecond), max(reapBatchKeys, int(cfg.KeysPerSecond)))
	}
	r.reaped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_reap_keys_total",
		Help: "Tombstones this node removed, as coordinator or as member.",
	})
	r.rounds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_reap_rounds_total",
		Help: "Reap rounds this node coordinated, by outcome: reaped, kept (no key was clear everywhere), failed (a member did not answer), blocked (passes the cluster was not settled for).",
	}, []string{"result"})
	r.compactions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_reap_compactions_total",
		Help: "Compactions of the object keyspace run after reaping.",
	})
	n.metrics.registry.MustRegister(r.reaped, r.rounds, r.compactions)
	return r
}

// run makes a pass every interval until ctx ends.
func (r *reaper) run(ctx context.Context) {
	if r.cfg.Interval <= 0 {
		return
	}
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.pass(ctx); err != nil && ctx.Err() == nil {
			r.n.log.Warn("tombstone reaping pass failed", zap.Error(err))
		}
	}
}

// graces returns the delete grace of every bucket that reaps: never
// shorter than the longest deadline a request may have, since every
// write, replica write and read repair made before the delete is over by
// then.
func (r *reaper) graces() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, p := range r.n.bucketTable().props {
		if g, ok := p.Grace(); ok {
			out[name] = max(g, r.n.cfg.MaxRequestTimeout)
		}
	}
	return out
}

// unsettled says why the cluster cannot reap now, or "".
func (r *reaper) unsettled() string {
	if r.n.members.Placement().Changing() {
		return "a membership change is in flight"
	}
	for _, m := range r.n.members.Members() {
		if m.Name == r.n.cfg.Name || m.Status == membership.StatusRemoved {
			continue
		}
		if !r.n.members.Alive(m.Name) || !r.n.up(m.Name) {
			return "member " + m.Name + " is down"
		}
	}
	return ""
}

func (r *reaper) setBlocked(reason string) {
	r.mu.Lock()
	changed := r.blocked != reason
	r.blocked = reason
	r.mu.Unlock()
	if changed && reason != "" {
		r.n.log.Info("tombstone reaping paused", zap.String("reason", reason))
	}
}

// Blocked says why reaping is paused, "" when it is not.
func (r *reaper) Blocked() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blocked
}

// pass reaps what it can of the partitions this node owns.
func (r *reaper) pass(ctx context.Context) error {
	graces := r.graces()
	if len(graces) == 0 {
		r.setBlocked("")
		return nil
	}
	if reason := r.unsettled(); reason != "" {
		r.rounds.WithLabelValues("blocked").Inc()
		r.setBlocked(reason)
		return nil
	}
	r.setBlocked("")
	ring := r.n.ring()
	parts, err := r.n.store.ObjectPartitions()
	if err != nil {
		return err
	}
	var reaped int
	for _, p := range parts {
		if ctx.Err() != nil {
			return nil
		}
		if ring.Owner(p) != r.n.cfg.Name {
			continue
		}
		k, err := r.partition(ctx, p, graces)
		reaped += k
		if err != nil {
			return err
		}
		if reason := r.unsettled(); reason != "" {
			r.setBlocked(reason)
			break
		}
	}
	r.mu.Lock()
	r.sinceCompact += reaped
	compact := r.sinceCompact >= reapCompactAfter
	if compact {
		r.sinceCompact = 0
	}
	r.mu.Unlock()
	if compact {
		r.compactions.Inc()
		return r.n.store.CompactObjects(ctx)
	}
	return nil
}

// partition reaps the tombstones of p older than their bucket's grace, a
// round of at most reapBatchKeys at a time.
func (r *reaper) partition(ctx context.Context, p uint32, graces map[string]time.Duration) (int, error) {
	now := r.n.now()
	var items []wire.AAEObject
	size := 0
	// after is the store key of the last object a round looked at: scans
	// are in key order, and each round starts past it, so a key kept is
	// looked at once per pass.
	var after []byte
	total := 0
	for {
		items, size = items[:0], 0
		err := r.n.store.ScanPartitionFiltered(p, func(bucket string, key []byte) bool {
			if _, ok := graces[bucket]; !ok {
				return false
			}
			return after == nil || bytes.Compare(scanOrder(bucket, key), after) > 0
		}, func(bucket string, key []byte, obj dvv.Object) (bool, error) {
			after = scanOrder(bucket, key)
			if obj.Found() || len(obj.Siblings) == 0 {
				return true, nil
			}
			if now.Sub(time.Unix(0, obj.Stamp())) < graces[bucket] {
				return true, nil
			}
			items = append(items, wire.AAEObject{Bucket: bucket, Key: append([]byte(nil), key...), Object: obj})
			size += len(bucket) + len(key) + obj.MsgpackSize() + 16
			return len(items) < reapBatchKeys && size < reapBatchBytes, nil
		})
		if err != nil {
			return total, err
		}
		if len(items) == 0 {
			return total, nil
		}
		if err := r.limit.WaitN(ctx, len(items)); err != nil {
			return total, nil // shutting down
		}
		k, err := r.round(ctx, p, items)
		total += k
		if err != nil {
			return total, err
		}
		if len(items) < reapBatchKeys && size < reapBatchBytes {
			return total, nil // the scan reached the end of p
		}
	}
}

// scanOrder encodes (bucket, key) as the store orders a partition's
// objects: uvarint(len(bucket)) | bucket | key.
func scanOrder(bucket string, key []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 2+len(bucket)+len(key)), uint64(len(bucket)))
	return append(append(b, bucket...), key...)
}

// round checks items with every member, then has every member reap those
// all of them found clear.
func (r *reaper) round(ctx context.Context, p uint32, items []wire.AAEObject) (int, error) {
	var peers []string
	for _, m := range r.n.members.Members() {
		if m.Name != r.n.cfg.Name && m.Status != membership.StatusRemoved {
			peers = append(peers, m.Name)
		}
	}
	// This node's own verdicts first; any member's objection keeps a key.
	verdicts := r.n.reapVerdicts(p, items)
	for _, peer := range peers {
		theirs, err := r.check(ctx, peer, p, items)
		if err != nil {
			r.rounds.WithLabelValues("failed").Inc()
			r.n.log.Info("reap check failed: keeping the partition's tombstones for a later pass",
				zap.Uint32("partition", p), zap.String("peer", peer), zap.Error(err))
			return 0, nil
		}
		for i, v := range theirs {
			if v != wire.ReapClear {
				verdicts[i] = v
			}
		}
	}
	var reap []wire.AAEObject
	for i, it := range items {
		if verdicts[i] == wire.ReapClear {
			reap = append(reap, it)
		}
	}
	if len(reap) == 0 {
		r.rounds.WithLabelValues("kept").Inc()
		return 0, nil
	}
	for _, peer := range peers {
		cctx, cancel := context.WithTimeout(ctx, reapCallTimeout)
		var resp wire.ReapResp
		err := r.n.callPeer(cctx, peer, wire.TypeReap, wire.ReapReq{Partition: p, Items: reap}, &resp)
		cancel()
		if err != nil {
			// Its copies stay tombstones: anti-entropy may bring them
			// back to the others, and a later pass reaps them again.
			r.n.log.Info("reap failed on a member", zap.Uint32("partition", p), zap.String("peer", peer), zap.Error(err))
		}
	}
	r.rounds.WithLabelValues("reaped").Inc()
	return r.reapLocal(p, reap)
}

// check asks peer about items and records the witness count it gave.
func (r *reaper) check(ctx context.Context, peer string, p uint32, items []wire.AAEObject) ([]uint8, error) {
	known, err := r.seenFor(peer)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, reapCallTimeout)
	defer cancel()
	var resp wire.ReapCheckResp
	req := wire.ReapCheckReq{Partition: p, Dir: known.dir, Seen: known.count, Items: items}
	if err := r.n.callPeer(cctx, peer, wire.TypeReapCheck, req, &resp); err != nil {
		return nil, err
	}
	if len(resp.Verdicts) != len(items) {
		return nil, fmt.Errorf("%s answered %d verdicts for %d keys", peer, len(resp.Verdicts), len(items))
	}
	// Recorded (synced) before any key is reaped: a copy of the peer's
	// directory from before this check is then always told apart.
	if err := r.recordSeen(peer, witness{dir: resp.Dir, count: resp.Witness}); err != nil {
		return nil, err
	}
	return resp.Verdicts, nil
}

func seenMetaName(peer string) string { return "reap.seen." + peer }

func (r *reaper) seenFor(peer string) (witness, error) {
	r.mu.Lock()
	w, ok := r.seen[peer]
	r.mu.Unlock()
	if ok {
		return w, nil
	}
	v, found, err := r.n.store.GetMeta(seenMetaName(peer))
	if err != nil {
		return witness{}, err
	}
	if found && len(v) > 8 {
		w = witness{dir: string(v[8:]), count: binary.BigEndian.Uint64(v[:8])}
	}
	r.mu.Lock()
	r.seen[peer] = w
	r.mu.Unlock()
	return w, nil
}

func (r *reaper) recordSeen(peer string, w witness) error {
	if w.dir == "" {
		return fmt.Errorf("%s named no data directory in its reap check answer", peer)
	}
	old, err := r.seenFor(peer)
	if err != nil || old == w {
		return err
	}
	if old.dir == w.dir && old.count > w.count {
		// Serving from a copy older than a check it answered: the check
		// itself stops it; nothing of this round is reaped.
		return fmt.Errorf("%s answers from a copy of its data directory older than its reap check %d (it counts %d)", peer, old.count, w.count)
	}
	v := append(binary.BigEndian.AppendUint64(nil, w.count), w.dir...)
	if err := r.n.store.PutMeta(seenMetaName(peer), v); err != nil {
		return err
	}
	r.mu.Lock()
	r.seen[peer] = w
	r.mu.Unlock()
	return nil
}

// reapVerdicts checks each item against this node's copy and hints.
func (n *Node) reapVerdicts(p uint32, items []wire.AAEObject) []uint8 {
	owners := n.store.HintStats()
	out := make([]uint8, len(items))
	for i, it := range items {
		cur, found, err := n.store.Get(p, it.Bucket, it.Key)
		switch {
		case err != nil:
			out[i] = wire.ReapDiffers
			continue
		case found && !cur.Equal(it.Object):
			out[i] = wire.ReapDiffers
			continue
		}
		for owner := range owners {
			_, held, err := n.store.GetHint(store.HintRef{Owner: owner, Partition: p, Bucket: it.Bucket, Key: it.Key})
			if err != nil || held {
				out[i] = wire.ReapHinted
				break
			}
		}
	}
	return out
}

func (r *reaper) reapLocal(p uint32, items []wire.AAEObject) (int, error) {
	k, err := r.n.reapItems(p, items)
	r.reaped.Add(float64(k))
	return k, err
}

// reapItems removes the keys whose copy here is still the item's
// tombstone.
func (n *Node) reapItems(p uint32, items []wire.AAEObject) (int, error) {
	reaped := 0
	for _, it := range items {
		ok, err := n.store.Reap(p, it.Bucket, it.Key, it.Object)
		if err != nil {
			return reaped, err
		}
		if ok {
			reaped++
		}
	}
	return reaped, nil
}

// checkReapRequest holds a peer's reap message to the rules: from a node,
// about valid keys of the partition, tombstones only.
func (n *Node) checkReapRequest(peer transport.Peer, p uint32, items []wire.AAEObject) error {
	if peer.Node == "" {
		return cairn.InvalidArgument("reap messages are for peers: the handshake named no node")
	}
	if len(items) > reapBatchKeys {
		return cairn.InvalidArgument("%d keys in one reap message, at most %d", len(items), reapBatchKeys)
	}
	for _, it := range items {
		if err := n.checkKey(p, it.Bucket, it.Key); err != nil {
			return err
		}
		if err := it.Object.Validate(); err != nil {
			return invalidObject(it.Bucket, it.Key, err)
		}
		if it.Object.Found() || len(it.Object.Siblings) == 0 {
			return cairn.InvalidArgument("reap of %s/%x: not a tombstone", it.Bucket, it.Key)
		}
	}
	return nil
}

// serveReapCheck answers a coordinator's check: first the directory's
// witness (a copy older than a check it answered must not answer at
// all), then a verdict per key.
func (n *Node) serveReapCheck(_ context.Context, peer transport.Peer, req wire.ReapCheckReq) (wire.ReapCheckResp, error) {
	if err := n.checkReapRequest(peer, req.Partition, req.Items); err != nil {
		return wire.ReapCheckResp{}, err
	}
	dir, err := n.store.DirID()
	if err != nil {
		return wire.ReapCheckResp{}, err
	}
	if req.Dir == dir {
		own, err := n.store.Witness()
		if err != nil {
			return wire.ReapCheckResp{}, err
		}
		if req.Seen > own {
			err := n.staleDirectory(peer.Node, req.Seen, own)
			n.fail(err)
			return wire.ReapCheckResp{}, fmt.Errorf("%w: %w", cairn.ErrUnavailable, err)
		}
	}
	w, err := n.store.BumpWitness()
	if err != nil {
		return wire.ReapCheckResp{}, err
	}
	return wire.ReapCheckResp{Dir: dir, Witness: w, Verdicts: n.reapVerdicts(req.Partition, req.Items)}, nil
}

// serveReap removes the keys still holding the tombstones named.
func (n *Node) serveReap(_ context.Context, peer transport.Peer, req wire.ReapReq) (wire.ReapResp, error) {
	if err := n.checkReapRequest(peer, req.Partition, req.Items); err != nil {
		return wire.ReapResp{}, err
	}
	k, err := n.reapItems(req.Partition, req.Items)
	n.reaper.reaped.Add(float64(k))
	return wire.ReapResp{Reaped: k}, err
}

// serveReapWitness tells a peer the witness count recorded for it.
func (n *Node) serveReapWitness(_ context.Context, peer transport.Peer, _ wire.ReapWitnessReq) (wire.ReapWitnessResp, error) {
	if peer.Node == "" {
		return wire.ReapWitnessResp{}, cairn.InvalidArgument("reap messages are for peers: the handshake named no node")
	}
	w, err := n.reaper.seenFor(peer.Node)
	return wire.ReapWitnessResp{Dir: w.dir, Seen: w.count}, err
}

func (n *Node) staleDirectory(peer string, seen, own uint64) error {
	return fmt.Errorf("data directory %s is older than this node's last tombstone reap check "+
		"(%s recorded check %d, the directory counts %d): it was restored from an old copy, "+
		"and keys deleted since could come back; move the directory away and start the node empty, "+
		"it takes its data back from its peers", n.cfg.DataDir, peer, seen, own)
}

// checkWitness runs at start, before the node serves: it asks the peers
// it can reach what they recorded of this directory's reap checks.
func (n *Node) checkWitness(ctx context.Context) error {
	dir, err := n.store.DirID()
	if err != nil {
		return err
	}
	own, err := n.store.Witness()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, m := range n.members.Members() {
		if m.Name == n.cfg.Name || m.Status == membership.StatusRemoved || ctx.Err() != nil {
			continue
		}
		var resp wire.ReapWitnessResp
		if err := n.callPeer(ctx, m.Name, wire.TypeReapWitness, wire.ReapWitnessReq{}, &resp); err != nil {
			continue // down or starting: the next reap check looks again
		}
		if resp.Dir == dir && resp.Seen > own {
			return n.staleDirectory(m.Name, resp.Seen, own)
		}
	}
	return nil
}

// fail stops the node from outside a request: the daemon exits on it.
func (n *Node) fail(err error) {
	n.log.Error("stopping the node", zap.Error(err))
	select {
	case n.serveErr <- err:
	default:
	}
}

// callPeer calls a member by name.
func (n *Node) callPeer(ctx context.Context, peer string, t wire.Type, req, resp any) error {
	return peerCaller{n: n}.Call(ctx, peer, t, req, resp)
}
