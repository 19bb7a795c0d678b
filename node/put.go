package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
	"go.uber.org/zap"
)

// writeReq is a put or a delete, after decoding.
type writeReq struct {
	op        string // put or delete
	bucket    string
	key       []byte
	value     []byte
	tombstone bool
	context   []byte
	opts      wire.Options
	forwarded bool
}

func (n *Node) put(ctx context.Context, req wire.PutReq) (wire.PutResp, error) {
	if err := wire.ValidateValue(req.Value, n.cfg.MaxValueSize); err != nil {
		return wire.PutResp{}, err
	}
	vv, err := n.write(ctx, writeReq{op: "put", bucket: req.Bucket, key: req.Key, value: req.Value,
		context: req.Context, opts: req.Opts, forwarded: req.Forwarded})
	return wire.PutResp{Context: vv}, err
}

func (n *Node) delete(ctx context.Context, req wire.DeleteReq) (wire.DeleteResp, error) {
	vv, err := n.write(ctx, writeReq{op: "delete", bucket: req.Bucket, key: req.Key, tombstone: true,
		context: req.Context, opts: req.Opts, forwarded: req.Forwarded})
	return wire.DeleteResp{Context: vv}, err
}

// write validates a put or delete, then coordinates it here when this node
// holds the key, or forwards it to a node that does. Everything is checked
// before anything is written: a bad request changes nothing. It returns the
// encoded context of the object after the write.
func (n *Node) write(ctx context.Context, w writeReq) ([]byte, error) {
	if err := wire.ValidateKey(w.bucket, w.key, n.cfg.MaxKeySize); err != nil {
		return nil, err
	}
	vv, err := wire.DecodeContext(w.context)
	if err != nil {
		return nil, err
	}
	r := n.ring()
	spec, err := n.resolveQuorums(w.op, r, w.opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := n.requestContext(ctx, w.opts.TimeoutMs)
	defer cancel()

	p := r.KeyPartition(w.bucket, w.key)
	primaries, fallbacks := r.Preference(p, spec.N)
	targets := quorum.Targets(primaries, fallbacks, n.up, !w.opts.NoSloppy)
	candidates := coordinators(targets, n.up)
	if !w.forwarded && !n.mayCoordinate(candidates) {
		return n.forward(ctx, w, candidates)
	}
	return n.coordinateWrite(ctx, w, vv, p, targets, spec)
}

// coordinators lists the targets that may coordinate a write, best first:
// the primaries that are up, then the fallbacks that are up. A fallback
// mints dots only when no primary can (every primary is unreachable), so a
// key's dots come from its primaries whenever one is there.
func coordinators(targets []quorum.Target, up func(string) bool) []quorum.Target {
	var out []quorum.Target
	for _, primary := range []bool{true, false} {
		for _, t := range targets {
			if t.Primary == primary && up(t.Node) {
				out = append(out, t)
			}
		}
	}
	return out
}

// mayCoordinate reports whether this node should coordinate a write itself:
// it is a primary target, or a fallback target and no primary is up.
func (n *Node) mayCoordinate(candidates []quorum.Target) bool {
	for _, t := range candidates {
		if t.Node == n.cfg.Name {
			return t.Primary || !candidates[0].Primary
		}
	}
	return false
}

func holds(targets []quorum.Target, node string) bool {
	for _, t := range targets {
		if t.Node == node {
			return true
		}
	}
	return false
}

// forward hands a write to a node that holds the key: dots are minted only
// by nodes that store the object (DESIGN section 3). It moves on to the next
// candidate only when the previous one could not have received the request.
func (n *Node) forward(ctx context.Context, w writeReq, targets []quorum.Target) ([]byte, error) {
	n.metrics.forwarded.Inc()
	var errs []error
	for _, t := range targets {
		addr, ok := n.members.Addr(t.Node)
		if !ok {
			continue
		}
		var err error
		var vv []byte
		if w.tombstone {
			var resp wire.DeleteResp
			err = n.peers.Call(ctx, addr, wire.TypeDelete, wire.DeleteReq{Bucket: w.bucket, Key: w.key,
				Context: w.context, Opts: w.opts, Forwarded: true}, &resp)
			vv = resp.Context
		} else {
			var resp wire.PutResp
			err = n.peers.Call(ctx, addr, wire.TypePut, wire.PutReq{Bucket: w.bucket, Key: w.key,
				Value: w.value, Context: w.context, Opts: w.opts, Forwarded: true}, &resp)
			vv = resp.Context
		}
		if err == nil || !transport.IsDialError(err) {
			return vv, err
		}
		n.markDown(t.Node, err)
		errs = append(errs, fmt.Errorf("%s: %w", t.Node, err))
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no replica of the key is up"))
	}
	return nil, &cairn.QuorumError{Op: w.op, Kind: "w", Need: 1, Got: 0, Of: len(targets),
		Replicas: outcomesFromErrs(targets, errs)}
}

func outcomesFromErrs(targets []quorum.Target, errs []error) []cairn.ReplicaOutcome {
	out := make([]cairn.ReplicaOutcome, 0, len(targets))
	for i, t := range targets {
		o := cairn.ReplicaOutcome{Node: t.Node, Primary: t.Primary, Err: "down"}
		if i < len(errs) {
			o.Err = errs[i].Error()
		}
		out = append(out, o)
	}
	return out
}

// coordinateWrite applies the write to the local copy, minting its dot with
// this node's actor for the partition, then sends the new object to every
// other target in parallel and answers once the tracker decides.
func (n *Node) coordinateWrite(ctx context.Context, w writeReq, vv dvv.VV, p uint32, targets []quorum.Target, spec quorum.Spec) ([]byte, error) {
	self := quorum.Target{Node: n.cfg.Name, Primary: true}
	for _, t := range targets {
		if t.Node == n.cfg.Name {
			self = t
		}
	}
	tracker := quorum.NewWriteTracker(w.op, targets, spec)
	if tracker.Done() {
		// Doomed before it starts (PW primaries are not even targets):
		// refuse it without writing anything.
		return nil, tracker.Err()
	}
	sync := !n.cfg.NoSyncWrites || spec.DW > 0
	obj, err := n.coordinateLocal(ctx, self, p, w.bucket, w.key, vv, w.value, w.tombstone, sync)
	if err != nil {
		return nil, err
	}
	tracker.Ack(self.Node, sync)
	others := make([]quorum.Target, 0, len(targets))
	for _, t := range targets {
		if t.Node != self.Node {
			others = append(others, t)
		}
	}
	results := n.fanOut(ctx, others, func(ctx context.Context, t quorum.Target) replicaResult {
		durable, err := n.replicaPut(ctx, t, p, w.bucket, w.key, obj, sync)
		return replicaResult{node: t.Node, durable: durable, err: err}
	})
	for !tracker.Done() {
		select {
		case res, ok := <-results:
			if !ok {
				// Every target answered and the tracker is still undecided:
				// only possible when it was given no targets to wait for.
				tracker.Timeout()
				continue
			}
			if res.err != nil {
				tracker.Fail(res.node, reason(res.err))
			} else {
				tracker.Ack(res.node, res.durable)
			}
		case <-ctx.Done():
			tracker.Timeout()
		}
	}
	if err := tracker.Err(); err != nil {
		return nil, err
	}
	return wire.EncodeContext(obj.VV), nil
}

// reason is the short text a quorum error shows for a replica's failure.
func reason(err error) string {
	switch {
	case errors.Is(err, cairn.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case transport.IsDialError(err):
		return "unreachable"
	}
	return err.Error()
}

// coordinateLocal applies a client write to this node's copy: it mints a dot
// and replaces exactly the siblings the client's context covers. A primary
// mints with its actor for the partition into its own data; a fallback
// standing in for self.For mints with its hint actor into the hint it keeps
// for that primary.
func (n *Node) coordinateLocal(ctx context.Context, self quorum.Target, p uint32, bucket string, key []byte, vv dvv.VV, value []byte, tombstone, sync bool) (dvv.Object, error) {
	if err := ctx.Err(); err != nil {
		return dvv.Object{}, fmt.Errorf("%w: %v", cairn.ErrTimeout, err)
	}
	writtenAt := n.now().UnixNano()
	var obj dvv.Object
	var err error
	if self.For != "" {
		ref := store.HintRef{Owner: self.For, Partition: p, Bucket: bucket, Key: key}
		obj, err = n.store.MintHint(ref, sync, writtenAt, func(cur dvv.Object, _ bool, actor string) (dvv.Object, bool, error) {
			return cur.Update(vv, actor, value, tombstone, writtenAt), true, nil
		})
		if err == nil {
			n.handoff.HintStored()
		}
	} else {
		var actor string
		actor, err = n.store.Actor(p)
		if err != nil {
			return dvv.Object{}, fmt.Errorf("%w: actor for partition %d: %v", cairn.ErrInternal, p, err)
		}
		obj, err = n.store.Modify(p, bucket, key, sync, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
			return cur.Update(vv, actor, value, tombstone, writtenAt), true, nil
		})
	}
	if err != nil {
		return dvv.Object{}, fmt.Errorf("%w: write: %v", cairn.ErrInternal, err)
	}
	n.checkSiblings(bucket, key, obj)
	return obj, nil
}

// checkSiblings counts and logs objects that grew past the sibling limit.
// Nothing is dropped: the limit is an alarm, not a policy.
func (n *Node) checkSiblings(bucket string, key []byte, obj dvv.Object) {
	n.metrics.siblings.Observe(float64(len(obj.Siblings)))
	if len(obj.Siblings) > n.cfg.SiblingLimit {
		n.metrics.siblingExcess.Inc()
		n.log.Warn("object over the sibling limit",
			zap.String("bucket", bucket), zap.Binary("key", key),
			zap.Int("siblings", len(obj.Siblings)), zap.Int("limit", n.cfg.SiblingLimit))
	}
}
