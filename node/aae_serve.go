package node

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

// frameOverhead approximates the bytes of a frame beyond its body (length,
// array header, id and type), for counting what a responder received.
const frameOverhead = 7

// aaeFor checks that anti-entropy runs here and that the request comes from
// a peer about a partition of the ring.
func (n *Node) aaeFor(peer transport.Peer, p uint32) (*aae, error) {
	if n.aae == nil {
		return nil, fmt.Errorf("%w: anti-entropy is off on %s", cairn.ErrUnavailable, n.cfg.Name)
	}
	if peer.Node == "" {
		return nil, cairn.InvalidArgument("anti-entropy messages are for peers: the handshake named no node")
	}
	if int(p) >= n.cfg.Partitions {
		return nil, cairn.InvalidArgument("partition %d out of range (q=%d)", p, n.cfg.Partitions)
	}
	return n.aae, nil
}

func errPartitionBusy(p uint32) error {
	return fmt.Errorf("%w: partition %d is in another anti-entropy exchange", cairn.ErrOverloaded, p)
}

func (n *Node) serveAAEQuery(peer transport.Peer, req wire.AAEQueryReq, reqBytes int) (wire.AAEAnswerResp, error) {
	a, err := n.aaeFor(peer, req.Partition)
	if err != nil {
		return wire.AAEAnswerResp{}, err
	}
	a.stats.received.Add(uint64(reqBytes + frameOverhead))
	p := req.Partition
	if req.End {
		a.release(p, peer.Node)
		return wire.AAEAnswerResp{}, nil
	}
	tree, ready := a.trees.get(p)
	if !ready {
		return wire.AAEAnswerResp{}, errTreeNotReady(p)
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
		keys, err := a.keyList(p, q.Segments, maxAAEKeyList)
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

// checkAAEKey holds a key a peer names to the same rules as a replica
// request's: a valid key of the partition named.
func (n *Node) checkAAEKey(p uint32, bucket string, key []byte) error {
	if err := wire.ValidateKey(bucket, key, n.cfg.MaxKeySize); err != nil {
		return err
	}
	if n.ring().KeyPartition(bucket, key) != p {
		return cairn.InvalidArgument("key does not belong to partition %d", p)
	}
	return nil
}

func (n *Node) serveAAEFetch(ctx context.Context, peer transport.Peer, req wire.AAEFetchReq, reqBytes int) (wire.AAEFetchResp, error) {
	a, err := n.aaeFor(peer, req.Partition)
	if err != nil {
		return wire.AAEFetchResp{}, err
	}
	a.stats.received.Add(uint64(reqBytes + frameOverhead))
	p := req.Partition
	if len(req.Keys) == 0 || len(req.Keys) > maxAAEBatchKeys {
		return wire.AAEFetchResp{}, cairn.InvalidArgument("anti-entropy fetch of %d keys: must be 1 to %d", len(req.Keys), maxAAEBatchKeys)
	}
	for _, k := range req.Keys {
		if err := n.checkAAEKey(p, k.Bucket, k.Key); err != nil {
			return wire.AAEFetchResp{}, err
		}
	}
	if !a.acquire(p, peer.Node) {
		return wire.AAEFetchResp{}, errPartitionBusy(p)
	}
	resp := wire.AAEFetchResp{Objects: []wire.AAEObject{}}
	size := 0
	for _, k := range req.Keys {
		if err := ctx.Err(); err != nil {
			return wire.AAEFetchResp{}, fmt.Errorf("%w: %v", cairn.ErrTimeout, err)
		}
		// Stop at the batch size, so the answer fits a frame: the peer
		// asks again for the rest.
		if resp.Answered > 0 && size >= a.cfg.BatchBytes {
			break
		}
		obj, found, err := n.store.Get(p, k.Bucket, k.Key)
		if err != nil {
			return wire.AAEFetchResp{}, fmt.Errorf("%w: read: %w", cairn.ErrInternal, err)
		}
		resp.Answered++
		if found && antientropy.Version(obj) != antientropy.Absent {
			resp.Objects = append(resp.Objects, wire.AAEObject{Bucket: k.Bucket, Key: k.Key, Object: obj})
			size += objectBytes(obj) + len(k.Bucket) + len(k.Key)
		}
	}
	a.stats.sent.Add(uint64(frameBytes(wire.TypeAAEFetchResp, resp)))
	return resp, nil
}

func (n *Node) serveAAEPush(ctx context.Context, peer transport.Peer, req wire.AAEPushReq, reqBytes int) (wire.AAEPushResp, error) {
	a, err := n.aaeFor(peer, req.Partition)
	if err != nil {
		return wire.AAEPushResp{}, err
	}
	a.stats.received.Add(uint64(reqBytes + frameOverhead))
	p := req.Partition
	if len(req.Objects) == 0 || len(req.Objects) > maxAAEBatchKeys {
		return wire.AAEPushResp{}, cairn.InvalidArgument("anti-entropy push of %d objects: must be 1 to %d", len(req.Objects), maxAAEBatchKeys)
	}
	for _, o := range req.Objects {
		if err := n.checkAAEKey(p, o.Bucket, o.Key); err != nil {
			return wire.AAEPushResp{}, err
		}
	}
	if !a.acquire(p, peer.Node) {
		return wire.AAEPushResp{}, errPartitionBusy(p)
	}
	var resp wire.AAEPushResp
	for _, o := range req.Objects {
		if err := ctx.Err(); err != nil {
			return wire.AAEPushResp{}, fmt.Errorf("%w: %v", cairn.ErrTimeout, err)
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
		if err := n.store.SyncWAL(); err != nil {
			return wire.AAEPushResp{}, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
		}
	}
	return resp, nil
}

// aaeStatusPage is the most trees one status answer lists.
const aaeStatusPage = 2048

func (n *Node) serveAAEStatus(req wire.AAEStatusReq) wire.AAEStatusResp {
	resp := wire.AAEStatusResp{Node: n.cfg.Name, OldestExchangeMs: -1}
	a := n.aae
	if a == nil {
		return resp
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
		return resp
	}
	for p := req.TreesFrom; int(p) < n.cfg.Partitions; p++ {
		s := a.trees.slots[p].Load()
		if s == nil {
			continue
		}
		if len(resp.TreeList) == aaeStatusPage {
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
	return resp
}
