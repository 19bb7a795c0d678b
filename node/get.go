package node

import (
	"context"
	"slices"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
	"go.uber.org/zap"
)

// get asks every target of the key in parallel, answers once R of them (PR
// primaries) have answered with the merge of what came back, and keeps
// listening in the background until all answered or the deadline passed, to
// repair every target whose copy is missing or behind the merge.
func (n *Node) get(ctx context.Context, req wire.GetReq) (wire.GetResp, error) {
	if err := wire.ValidateKey(req.Bucket, req.Key, n.cfg.MaxKeySize); err != nil {
		return wire.GetResp{}, err
	}
	r := n.ring()
	spec, err := n.resolveQuorums("get", r, req.Opts)
	if err != nil {
		return wire.GetResp{}, err
	}
	ctx, cancel := n.requestContext(ctx, req.Opts.TimeoutMs)
	defer cancel()

	p := r.KeyPartition(req.Bucket, req.Key)
	primaries, fallbacks := r.Preference(p, spec.N)
	targets := quorum.Targets(primaries, fallbacks, n.up, !req.Opts.NoSloppy)
	if !holds(targets, n.cfg.Name) {
		n.metrics.remoteGets.Inc()
	}
	tracker := quorum.NewReadTracker(targets, spec)
	results := n.fanOut(ctx, targets, func(ctx context.Context, t quorum.Target) replicaResult {
		obj, found, err := n.replicaGet(ctx, t, p, req.Bucket, req.Key)
		return replicaResult{node: t.Node, obj: obj, found: found, err: err}
	})
	feed := func(res replicaResult) {
		if res.err != nil {
			tracker.Fail(res.node, reason(res.err))
		} else {
			tracker.Reply(res.node, res.obj, res.found)
		}
	}
	for !tracker.Done() {
		select {
		case res, ok := <-results:
			if !ok {
				tracker.Timeout()
				continue
			}
			feed(res)
		case <-ctx.Done():
			tracker.Timeout()
		}
	}
	if err := tracker.Err(); err != nil {
		return wire.GetResp{}, err
	}
	obj, replicas := tracker.Result()
	// The tracker is handed to the background from here on: the handler
	// never touches it again.
	n.background(func() {
		for res := range results {
			feed(res)
		}
		n.readRepair(p, req.Bucket, req.Key, tracker)
	})
	resp := getResponse(obj, replicas)
	for _, t := range targets {
		if !t.Primary && slices.Contains(replicas, t.Node) {
			resp.Fallbacks = append(resp.Fallbacks, t.Node)
		}
	}
	return resp, nil
}

// readRepair sends the merge of every answer to each target whose copy was
// missing or behind it. Replica puts sync, so a repair never overwrites a
// write that raced with it.
func (n *Node) readRepair(p uint32, bucket string, key []byte, tracker *quorum.ReadTracker) {
	repairs := tracker.Repairs()
	if len(repairs) == 0 || !n.cfg.ReadRepair {
		return
	}
	merged, _ := tracker.Result()
	ctx, cancel := context.WithTimeout(n.lifetime, n.cfg.RequestTimeout)
	defer cancel()
	for res := range n.fanOut(ctx, repairs, func(ctx context.Context, t quorum.Target) replicaResult {
		_, err := n.replicaPut(ctx, t, p, bucket, key, merged, false)
		return replicaResult{node: t.Node, err: err}
	}) {
		if res.err != nil {
			n.metrics.readRepairs.WithLabelValues("failed").Inc()
			n.log.Debug("read repair failed", zap.String("node", res.node), zap.Error(res.err))
			continue
		}
		n.metrics.readRepairs.WithLabelValues("ok").Inc()
	}
}

// getResponse shapes an object for a client: live siblings only, and the
// context even when nothing is live, so a later put can supersede the
// tombstones cleanly.
func getResponse(obj dvv.Object, replicas []string) wire.GetResp {
	resp := wire.GetResp{Found: obj.Found(), Context: wire.EncodeContext(obj.VV), Replicas: replicas}
	for _, s := range obj.Live() {
		resp.Siblings = append(resp.Siblings, wire.Sibling{Value: s.Value, WrittenAt: s.WrittenAt})
	}
	return resp
}
