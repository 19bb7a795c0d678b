package aae

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"go.uber.org/zap"
)

// Pruning retired actors (docs/ARCHITECTURE.md, "Pruning retired
// actors"). An actor retires when the node incarnation that minted under
// it ends (an unclean restart, a dropped partition); the store records it.
// Its entries stay in the vectors of every key it wrote, and a vector
// gains one per unclean restart of a node that coordinates the key. This
// node prunes only the actors it retired itself, since only it knows they
// will never mint again, and only from keys where no copy anywhere can
// hold one of their replaced writes:
//
//  1. A pass reads this node's copies of a partition it replicates and
//     picks keys whose vector names an actor it retired that no sibling
//     names (dvv.Object.Prunable).
//  2. It looks at every copy of those keys in the cluster: every member
//     of the ring must be alive and answer, and no node may keep a hint
//     (pending, or delivered and awaiting its episode's end); each
//     primary's copy must equal this node's, and any other member must
//     hold none or an equal one. It notes how many hints each member has
//     written since it started.
//  3. It waits PruneSettle, longer than any copy sent between nodes takes
//     to arrive, and looks again: same ring, this node's copy unchanged,
//     every copy still equal, and no member has written a hint since.
//  4. It asks each other primary to prune (an AAE push with Prune set):
//     each drops the same entries from its copy if that copy still equals
//     the one looked at, so all copies stay equal. Then it prunes its own
//     the same way.
//
// A write replaced before the first look is covered by every copy then;
// a copy still in flight at the first look arrives before the second
// (dropped by Sync, since every copy covers it), and the only copies a
// late arrival could create outside the primaries, which drop it, are
// hints, none of which was written in between.

// pruneCandidate is one key a pass may prune.
type pruneCandidate struct {
	bucket string
	key    []byte
	obj    dvv.Object
}

// pruneLoop runs a pass every PruneInterval until ctx ends.
func (a *AAE) pruneLoop(ctx context.Context) {
	timer := time.NewTimer(a.cfg.PruneInterval)
	defer timer.Stop()
	var next uint32
	cursor := map[uint32]string{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next = a.prunePass(ctx, next, cursor)
		timer.Reset(a.cfg.PruneInterval)
	}
}

// prunePass prunes at most PruneMaxKeys keys, reading at most
// PruneScanKeys objects, of the partitions this node replicates and
// retired actors of, starting from partition next and from the key after
// each partition's cursor. It returns the partition to start from next
// time.
func (a *AAE) prunePass(ctx context.Context, next uint32, cursor map[uint32]string) uint32 {
	a.mu.Lock()
	parts := slices.Sorted(maps.Keys(a.assigned))
	a.mu.Unlock()
	if len(parts) == 0 {
		return 0
	}
	start, _ := slices.BinarySearch(parts, next)
	scanLeft, candLeft := a.cfg.PruneScanKeys, a.cfg.PruneMaxKeys
	var groups []pruneGroup
	next = 0
	for i := range parts {
		p := parts[(start+i)%len(parts)]
		retired := a.d.Store.RetiredActors(p)
		if len(retired) == 0 {
			continue
		}
		cands, last, scanned, err := a.pruneCandidates(p, retired, cursor[p], scanLeft, candLeft)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("anti-entropy: pruning: cannot read partition", zap.Uint32("partition", p), zap.Error(err))
			}
			next = p + 1
			break
		}
		scanLeft -= scanned
		candLeft -= len(cands)
		if len(cands) > 0 {
			groups = append(groups, pruneGroup{p: p, actors: prunable(cands, retired), cands: cands})
		}
		if last != "" {
			cursor[p] = last
			next = p
			break
		}
		delete(cursor, p)
		next = p + 1
		if scanLeft <= 0 || candLeft <= 0 {
			break
		}
	}
	if len(groups) > 0 {
		// Put off while the cluster is not quiet (a member down, a hint
		// kept): usual and retried every pass, so not worth a log line
		// above debug.
		if err := a.pruneKeys(ctx, groups); err != nil && ctx.Err() == nil {
			a.log.Debug("anti-entropy: pruning retired actors put off", zap.Error(err))
		}
	}
	return next
}

// pruneGroup is the candidates of one partition and the actors their
// copies prune.
type pruneGroup struct {
	p      uint32
	actors []string
	cands  []pruneCandidate
}

// pruneCandidates reads partition p after the cursor and returns up to
// candLeft keys whose vector names a retired actor no sibling names,
// reading at most scanLeft objects. last names the last key read when the
// scan stopped short of the partition's end, for the cursor.
func (a *AAE) pruneCandidates(p uint32, retired []string, after string, scanLeft, candLeft int) (cands []pruneCandidate, last string, scanned int, err error) {
	set := make(map[string]bool, len(retired))
	for _, r := range retired {
		set[r] = true
	}
	isRetired := func(actor string) bool { return set[actor] }
	err = a.d.Store.ScanPartitionFiltered(p, func(bucket string, key []byte) bool {
		return after == "" || keyID(bucket, key) > after
	}, func(bucket string, key []byte, obj dvv.Object) (bool, error) {
		scanned++
		if len(obj.Prunable(isRetired)) > 0 {
			cands = append(cands, pruneCandidate{bucket: bucket, key: slices.Clone(key), obj: obj})
		}
		if scanned >= scanLeft || len(cands) >= candLeft {
			last = keyID(bucket, key)
			return false, nil
		}
		return true, nil
	})
	return cands, last, scanned, err
}

// prunable returns the retired actors the candidates' vectors name, at
// most maxPruneActors of them, sorted: the list every copy prunes.
func prunable(cands []pruneCandidate, retired []string) []string {
	set := make(map[string]bool, len(retired))
	for _, r := range retired {
		set[r] = true
	}
	named := map[string]bool{}
	for _, c := range cands {
		for _, a := range c.obj.Prunable(func(actor string) bool { return set[actor] }) {
			named[a] = true
		}
	}
	out := slices.Sorted(maps.Keys(named))
	return out[:min(len(out), maxPruneActors)]
}

// pruneKeys runs steps 2 to 4 for the candidates of a pass.
func (a *AAE) pruneKeys(ctx context.Context, groups []pruneGroup) error {
	ringVersion := a.d.Members.Ring().Version()
	hints, err := a.hintsWritten(ctx)
	if err != nil {
		return err
	}
	found := 0
	for i := range groups {
		groups[i].cands = a.agreed(ctx, groups[i].p, groups[i].cands)
		found += len(groups[i].cands)
	}
	if found == 0 {
		return nil
	}
	timer := time.NewTimer(a.cfg.PruneSettle)
	select {
	case <-ctx.Done():
		timer.Stop()
		return ctx.Err()
	case <-timer.C:
	}
	again, err := a.hintsWritten(ctx)
	if err != nil {
		return err
	}
	if !maps.Equal(hints, again) {
		return errors.New("hints were written while the copies settled")
	}
	for i := range groups {
		g := &groups[i]
		var still []pruneCandidate
		for _, c := range g.cands {
			cur, found, err := a.d.Store.Get(g.p, c.bucket, c.key)
			if err == nil && found && cur.Equal(c.obj) {
				still = append(still, c)
			}
		}
		g.cands = a.agreed(ctx, g.p, still)
	}
	r := a.d.Members.Ring()
	if r.Version() != ringVersion {
		return fmt.Errorf("the ring changed (version %d, then %d)", ringVersion, r.Version())
	}
	var errs []error
	for _, g := range groups {
		if len(g.cands) == 0 {
			continue
		}
		if err := a.pruneGroup(ctx, r, g); err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", g.p, err))
		}
	}
	return errors.Join(errs...)
}

// pruneGroup asks the partition's other primaries to prune, then prunes
// this node's copies.
func (a *AAE) pruneGroup(ctx context.Context, r *ring.Ring, g pruneGroup) error {
	primaries, _ := r.Preference(g.p, a.d.Members.ReplicationFactor(r))
	for _, peer := range primaries {
		if peer == a.d.Name {
			continue
		}
		if err := a.pushPrune(ctx, peer, g.p, g.actors, g.cands); err != nil {
			return fmt.Errorf("prune on %s: %w", peer, err)
		}
	}
	keys, entries, err := a.pruneLocal(g.p, g.actors, g.cands)
	if err != nil {
		return err
	}
	a.log.Info("anti-entropy: pruned retired actors from version vectors",
		zap.Uint32("partition", g.p), zap.Int("keys", keys), zap.Int("entries", entries), zap.Strings("retired", g.actors))
	return nil
}

// hintsWritten asks every other member how many hints it has written
// since it started. It fails unless every member of the ring is alive and
// answers, and while any node, this one included, keeps a hint: a
// member's answer to a replica get merges its hints with its data, and
// the merge would hide a replaced write a hint holds.
func (a *AAE) hintsWritten(ctx context.Context) (map[string][2]int64, error) {
	out := map[string][2]int64{}
	for _, m := range a.d.Members.Ring().Members() {
		if m == a.d.Name {
			continue
		}
		if !a.d.Members.Alive(m) {
			return nil, fmt.Errorf("member %s is down; it may hold copies", m)
		}
		var resp wire.HintsResp
		if err := a.call(ctx, m, wire.TypeHints, wire.HintsReq{}, &resp); err != nil {
			return nil, fmt.Errorf("hints of %s: %w", m, err)
		}
		for _, o := range resp.Owners {
			if o.Pending > 0 || o.Delivered > 0 {
				return nil, fmt.Errorf("%s keeps hints for %s", m, o.Owner)
			}
		}
		out[m] = [2]int64{int64(resp.Stored), resp.Started}
	}
	for owner, st := range a.d.Store.HintStats() {
		if st.Pending > 0 || st.Delivered > 0 {
			return nil, fmt.Errorf("this node keeps hints for %s", owner)
		}
	}
	return out, nil
}

// agreed returns the candidates whose every copy in the cluster equals
// this node's: each primary's (with its hints), any other member's data
// or hints, and this node's hints.
func (a *AAE) agreed(ctx context.Context, p uint32, cands []pruneCandidate) []pruneCandidate {
	r := a.d.Members.Ring()
	primaries, _ := r.Preference(p, a.d.Members.ReplicationFactor(r))
	members := r.Members()
	owners := slices.Sorted(maps.Keys(a.d.Store.HintStats()))
	var out []pruneCandidate
next:
	for _, c := range cands {
		for _, owner := range owners {
			h, found, err := a.d.Store.GetHint(store.HintRef{Owner: owner, Partition: p, Bucket: c.bucket, Key: c.key})
			if err != nil || (found && !h.Equal(c.obj)) {
				continue next
			}
		}
		for _, m := range members {
			if m == a.d.Name {
				continue
			}
			if !a.d.Members.Alive(m) {
				return nil
			}
			var resp wire.ReplicaGetResp
			err := a.call(ctx, m, wire.TypeReplicaGet, wire.ReplicaGetReq{Partition: p, Bucket: c.bucket, Key: c.key, AllHints: true}, &resp)
			if err != nil {
				return nil
			}
			primary := slices.Contains(primaries, m)
			switch {
			case !resp.Found && !primary:
			case resp.Found && !resp.Omitted && resp.Object.Equal(c.obj):
			default:
				continue next
			}
		}
		out = append(out, c)
	}
	return out
}

// pushPrune asks a primary to prune the candidates' copies, in batches
// that fit a frame.
func (a *AAE) pushPrune(ctx context.Context, peer string, p uint32, retired []string, cands []pruneCandidate) error {
	var batch []wire.AAEObject
	bytes := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var resp wire.AAEPushResp
		err := a.call(ctx, peer, wire.TypeAAEPush, wire.AAEPushReq{Partition: p, Objects: batch, Prune: retired}, &resp)
		batch, bytes = nil, 0
		return err
	}
	for _, c := range cands {
		n := objectBytes(c.obj) + len(c.bucket) + len(c.key)
		if len(batch) > 0 && (len(batch) >= a.cfg.BatchKeys || bytes+n > a.cfg.BatchBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, wire.AAEObject{Bucket: c.bucket, Key: c.key, Object: c.obj})
		bytes += n
	}
	return flush()
}

// pruneLocal prunes this node's own copies that still equal what was
// looked at.
func (a *AAE) pruneLocal(p uint32, retired []string, cands []pruneCandidate) (keys, entries int, err error) {
	for _, c := range cands {
		n, err := a.pruneCopy(p, c.bucket, c.key, c.obj, retired)
		if err != nil {
			return keys, entries, err
		}
		if n > 0 {
			keys++
			entries += n
		}
	}
	if keys > 0 {
		if err := a.d.Store.SyncWAL(); err != nil {
			return keys, entries, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
		}
	}
	return keys, entries, nil
}

// pruneCopy drops the actors' entries from this node's copy of a key if
// it equals want, and returns how many it dropped.
func (a *AAE) pruneCopy(p uint32, bucket string, key []byte, want dvv.Object, actors []string) (int, error) {
	dropped := 0
	_, err := a.d.Store.ModifyUnsynced(p, bucket, key, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		if !found || !cur.Equal(want) {
			return cur, false, nil
		}
		next, n := cur.Prune(actors)
		if n == 0 {
			return cur, false, nil
		}
		dropped = n
		return next, true, nil
	})
	if err != nil {
		return 0, fmt.Errorf("%w: anti-entropy prune: %w", cairn.ErrInternal, err)
	}
	if dropped > 0 {
		a.stats.prunedKeys.Add(1)
		a.stats.prunedEntries.Add(uint64(dropped))
	}
	return dropped, nil
}

// maxPruneActors bounds the actors one prune names: a vector has no more.
const maxPruneActors = 1024

// servePrune is ServePush with Prune set: a peer that retired the actors
// found every copy of these keys equal, twice, and asks this node to drop
// their entries from its copies that still equal the objects sent. It
// records the actors as retired first, so that a client's context naming
// one is clamped here rather than refused (node/coord). Nothing is synced.
func (a *AAE) servePrune(ctx context.Context, peer transport.Peer, req wire.AAEPushReq) (wire.AAEPushResp, error) {
	p := req.Partition
	if len(req.Prune) > maxPruneActors {
		return wire.AAEPushResp{}, cairn.InvalidArgument("anti-entropy prune of %d actors: at most %d", len(req.Prune), maxPruneActors)
	}
	for _, actor := range req.Prune {
		if !strings.HasPrefix(actor, peer.Node+".") {
			return wire.AAEPushResp{}, cairn.InvalidArgument("anti-entropy prune of actor %q from %s: a node prunes only the actors it retired", actor, peer.Node)
		}
	}
	if err := a.d.Store.RetireActors(p, req.Prune); err != nil {
		return wire.AAEPushResp{}, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
	}
	var resp wire.AAEPushResp
	entries := 0
	for _, o := range req.Objects {
		if err := ctx.Err(); err != nil {
			return wire.AAEPushResp{}, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
		}
		n, err := a.pruneCopy(p, o.Bucket, o.Key, o.Object, req.Prune)
		if err != nil {
			return wire.AAEPushResp{}, err
		}
		if n > 0 {
			resp.Applied++
			entries += n
		}
	}
	if resp.Applied > 0 {
		if err := a.d.Store.SyncWAL(); err != nil {
			return wire.AAEPushResp{}, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
		}
		a.log.Info("anti-entropy: pruned retired actors from version vectors at a peer's request",
			zap.String("peer", peer.Node), zap.Uint32("partition", p), zap.Int("keys", resp.Applied), zap.Int("entries", entries))
	}
	return resp, nil
}
