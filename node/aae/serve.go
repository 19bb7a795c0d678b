package aae

import (
	"context"
	"fmt"
	"math"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// The responder's side of an exchange: answers from the tree, key lists,
// fetches and pushes, each for a peer only, each taking or renewing the
// peer's lease on the partition (a root query excepted).

// check admits a request: anti-entropy runs here, and the request comes
// from a peer about a partition of the ring. It counts the request's bytes
// as received.
func (a *AAE) check(peer transport.Peer, p uint32, t wire.Type, req any) error {
	if !a.Enabled() {
		return a.errOff()
	}
	if peer.Node == "" {
		return cairn.InvalidArgument("anti-entropy messages are for peers: the handshake named no node")
	}
	if int(p) >= len(a.trees.slots) {
		return cairn.InvalidArgument("partition %d out of range (q=%d)", p, len(a.trees.slots))
	}
	a.stats.received.Add(uint64(frameBytes(t, req)))
	return nil
}

func (a *AAE) errOff() error {
	return fmt.Errorf("%w: anti-entropy is off on %s", cairn.ErrUnavailable, a.d.Name)
}

func errPartitionBusy(p uint32) error {
	return fmt.Errorf("%w: partition %d is in another anti-entropy exchange", cairn.ErrOverloaded, p)
}

// ServeQuery answers one query of a peer's exchange: from the tree, or
// for a key list from storage. A tree still waiting for its rebuild is
// rebuilt first. A query past the root leases the partition to the peer;
// one with End releases it.
func (a *AAE) ServeQuery(ctx context.Context, peer transport.Peer, req wire.AAEQueryReq) (wire.AAEAnswerResp, error) {
	if err := a.check(peer, req.Partition, wire.TypeAAEQuery, req); err != nil {
		return wire.AAEAnswerResp{}, err
	}
	p := req.Partition
	if req.End {
		a.release(p, peer.Node)
		return wire.AAEAnswerResp{}, nil
	}
	if req.Kind == wire.AAERoots {
		return a.serveRoots(req.Partitions)
	}
	tree, err := a.treeFor(ctx, p)
	if err != nil {
		return wire.AAEAnswerResp{}, err
	}
	q := antientropy.Query{Kind: antientropy.QueryKind(req.Kind), Branches: req.Branches, Segments: req.Segments}
	if err := q.Validate(tree.Shape()); err != nil {
		return wire.AAEAnswerResp{}, cairn.InvalidArgument("%v", err)
	}
	if q.Kind != antientropy.QueryRoot && !a.acquire(p, peer.Node) {
		return wire.AAEAnswerResp{}, errPartitionBusy(p)
	}
	var resp wire.AAEAnswerResp
	if q.Kind == antientropy.QueryKeys {
		keys, err := a.keyList(p, q.Segments, maxKeyList)
		if err != nil {
			return wire.AAEAnswerResp{}, err
		}
		resp.KeyList = make([]wire.AAEKey, len(keys))
		for i, k := range keys {
			resp.KeyList[i] = wire.AAEKey{Bucket: k.Bucket, Key: k.Key, Version: k.Version}
		}
	} else {
		ans, err := tree.Answer(q)
		if err != nil {
			return wire.AAEAnswerResp{}, cairn.InvalidArgument("%v", err)
		}
		resp = wire.AAEAnswerResp{Segments: ans.Shape.Segments, Branches: ans.Shape.Branches, Root: ans.Root, Hashes: ans.Hashes}
		if q.Kind == antientropy.QueryRoot {
			resp.Keys = tree.Keys()
		}
	}
	a.stats.sent.Add(uint64(frameBytes(wire.TypeAAEAnswer, resp)))
	return resp, nil
}

// serveRoots answers many roots at once. It never waits for a rebuild: a
// tree not ready is reported as such, and the peer exchanges that
// partition (which rebuilds it) rather than compare it now.
func (a *AAE) serveRoots(parts []uint32) (wire.AAEAnswerResp, error) {
	q := len(a.trees.slots)
	if len(parts) == 0 || len(parts) > q {
		return wire.AAEAnswerResp{}, cairn.InvalidArgument("anti-entropy roots of %d partitions: must be 1 to %d", len(parts), q)
	}
	resp := wire.AAEAnswerResp{Roots: make([]uint64, len(parts))}
	for i, p := range parts {
		if int(p) >= q {
			return wire.AAEAnswerResp{}, cairn.InvalidArgument("partition %d out of range (q=%d)", p, q)
		}
		root, ok := a.trees.root(p)
		if !ok {
			resp.NotReady = append(resp.NotReady, p)
		}
		resp.Roots[i] = root
	}
	a.stats.sent.Add(uint64(frameBytes(wire.TypeAAEAnswer, resp)))
	return resp, nil
}

// ServeFetch answers a peer's fetch of the objects it found different,
// up to a batch's size.
func (a *AAE) ServeFetch(ctx context.Context, peer transport.Peer, req wire.AAEFetchReq) (wire.AAEFetchResp, error) {
	if err := a.check(peer, req.Partition, wire.TypeAAEFetch, req); err != nil {
		return wire.AAEFetchResp{}, err
	}
	p := req.Partition
	if len(req.Keys) == 0 || len(req.Keys) > maxBatchKeys {
		return wire.AAEFetchResp{}, cairn.InvalidArgument("anti-entropy fetch of %d keys: must be 1 to %d", len(req.Keys), maxBatchKeys)
	}
	for _, k := range req.Keys {
		if err := a.d.CheckKey(p, k.Bucket, k.Key); err != nil {
			return wire.AAEFetchResp{}, err
		}
	}
	if !a.acquire(p, peer.Node) {
		return wire.AAEFetchResp{}, errPartitionBusy(p)
	}
	resp := wire.AAEFetchResp{Objects: []wire.AAEObject{}}
	size := 0
	msg := wire.Batch{MaxFrame: a.d.MaxFrame}
	for _, k := range req.Keys {
		if err := ctx.Err(); err != nil {
			return wire.AAEFetchResp{}, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
		}
		// Stop at the batch size, so the answer stays small: the peer
		// asks again for the rest.
		if resp.Answered > 0 && size >= a.cfg.BatchBytes {
			break
		}
		obj, found, err := a.d.Store.Get(p, k.Bucket, k.Key)
		if err != nil {
			return wire.AAEFetchResp{}, fmt.Errorf("%w: read: %w", cairn.ErrInternal, err)
		}
		if found && antientropy.Version(obj) != antientropy.Absent {
			// And always within what the peer reads in one message:
			// many siblings reach its element limit long before the
			// batch's bytes.
			if !msg.Fits(obj, k.Bucket, k.Key) {
				if len(resp.Objects) > 0 {
					break
				}
				// Too large for any message on its own: answered as not
				// held, so the exchange goes on with the other keys.
				a.tooLarge(p, k.Bucket, k.Key, obj)
				resp.Answered++
				continue
			}
			resp.Objects = append(resp.Objects, wire.AAEObject{Bucket: k.Bucket, Key: k.Key, Object: obj})
			size += objectBytes(obj) + len(k.Bucket) + len(k.Key)
			msg.Add(obj, k.Bucket, k.Key)
		}
		resp.Answered++
	}
	a.stats.sent.Add(uint64(frameBytes(wire.TypeAAEFetchResp, resp)))
	return resp, nil
}

// ServePush syncs the objects a peer's exchange found this node lacking
// or behind, durably before the answer. Every object is checked first: one
// that breaks the dot rules refuses the push, and nothing is written.
func (a *AAE) ServePush(ctx context.Context, peer transport.Peer, req wire.AAEPushReq) (wire.AAEPushResp, error) {
	if err := a.check(peer, req.Partition, wire.TypeAAEPush, req); err != nil {
		return wire.AAEPushResp{}, err
	}
	p := req.Partition
	if len(req.Objects) == 0 || len(req.Objects) > maxBatchKeys {
		return wire.AAEPushResp{}, cairn.InvalidArgument("anti-entropy push of %d objects: must be 1 to %d", len(req.Objects), maxBatchKeys)
	}
	for _, o := range req.Objects {
		if err := a.d.CheckKey(p, o.Bucket, o.Key); err != nil {
			return wire.AAEPushResp{}, err
		}
		if err := validObject(o); err != nil {
			return wire.AAEPushResp{}, err
		}
	}
	if len(req.Prune) > 0 {
		return a.servePrune(ctx, peer, req)
	}
	if !a.acquire(p, peer.Node) {
		return wire.AAEPushResp{}, errPartitionBusy(p)
	}
	var resp wire.AAEPushResp
	for _, o := range req.Objects {
		if err := ctx.Err(); err != nil {
			return wire.AAEPushResp{}, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
		}
		_, changed, err := a.syncLocal(p, o.Bucket, o.Key, o.Object)
		if err != nil {
			return wire.AAEPushResp{}, err
		}
		if changed {
			resp.Applied++
		}
	}
	// Durable before the answer, one fsync for the batch.
	if resp.Applied > 0 {
		if err := a.d.Store.SyncWAL(); err != nil {
			return wire.AAEPushResp{}, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
		}
	}
	return resp, nil
}

// statusPage is the most trees one status answer lists.
const statusPage = 2048

// ServeStatus reports this node's anti-entropy: its counters, its
// coverage of the partitions it replicates, and on request its trees.
func (a *AAE) ServeStatus(_ context.Context, _ transport.Peer, req wire.AAEStatusReq) (wire.AAEStatusResp, error) {
	resp := wire.AAEStatusResp{Node: a.d.Name, OldestExchangeMs: -1}
	if !a.Enabled() {
		return resp, nil
	}
	resp.Enabled = true
	resp.Trees, resp.NotReady = a.trees.counts()
	resp.Exchanges, resp.Failures = a.stats.exchanges.Load(), a.stats.failures.Load()
	resp.KeysFetched, resp.KeysPushed = a.stats.fetched.Load(), a.stats.pushed.Load()
	resp.BytesSent, resp.BytesReceived = a.stats.sent.Load(), a.stats.received.Load()
	resp.Rebuilds = a.stats.rebuilds.Load()
	now := a.clock()
	age := func(e partExchange) int64 {
		if !e.done {
			return -1
		}
		return (now - e.at) / 1e6
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	resp.Running = a.sched.Stats().Running
	resp.Partitions = len(a.assigned)
	oldest := int64(math.MaxInt64)
	for p := range a.assigned {
		e := a.last[p]
		switch {
		case !e.done:
			resp.NeverExchanged++
		case e.inSync:
			resp.InSync++
		}
		if e.done {
			oldest = min(oldest, now-e.at)
		}
	}
	if resp.NeverExchanged == 0 && len(a.assigned) > 0 {
		resp.OldestExchangeMs = oldest / 1e6
	}
	if !req.Trees {
		return resp, nil
	}
	for p := req.TreesFrom; int(p) < len(a.trees.slots); p++ {
		s := a.trees.slots[p].Load()
		if s == nil {
			continue
		}
		if len(resp.TreeList) == statusPage {
			resp.TreesNext, resp.TreesMore = p, true
			break
		}
		info := wire.AAETreeInfo{Partition: p, Ready: s.ready, LastExchangeMs: age(a.last[p]), InSync: a.last[p].inSync}
		if s.tree != nil {
			info.Root, info.Keys = s.tree.Root(), s.tree.Keys()
		}
		_, info.Replicated = a.assigned[p]
		resp.TreeList = append(resp.TreeList, info)
	}
	return resp, nil
}
