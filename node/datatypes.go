package node

import (
	"context"
	"fmt"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/buckets"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
)

// serveCounterIncr coordinates an increment (dataWrite): the coordinator
// adds the delta to its copy's total for its actor.
func (n *Node) serveCounterIncr(ctx context.Context, _ transport.Peer, req wire.CounterIncrReq) (wire.CounterIncrResp, error) {
	answer, err := n.dataWrite(ctx, req.Bucket, req.Key, req.Opts, req.Forwarded, buckets.DatatypeCounter, dvv.Op{Delta: req.Delta})
	if err != nil {
		return wire.CounterIncrResp{}, err
	}
	v, err := coord.ReadCounterAnswer(answer)
	return wire.CounterIncrResp{Value: v}, err
}

// serveSetUpdate coordinates a set add or remove as serveCounterIncr does
// an increment. A remove's context is the set clock of the client's read:
// it removes the adds that read saw, and a context naming adds the
// coordinator's copy has not seen makes it catch up first (and, if no
// reachable copy has seen them, is refused or clamped as a put's is).
func (n *Node) serveSetUpdate(ctx context.Context, _ transport.Peer, req wire.SetUpdateReq) (wire.SetUpdateResp, error) {
	if err := wire.ValidateValue(req.Element, n.cfg.MaxValueSize); err != nil {
		return wire.SetUpdateResp{}, err
	}
	op := dvv.Op{Kind: dvv.OpAdd, Element: req.Element}
	if req.Remove {
		vv, err := wire.DecodeContext(req.Context)
		if err != nil {
			return wire.SetUpdateResp{}, err
		}
		if vv == nil && len(req.Context) > 0 {
			vv = dvv.VV{} // the context of an empty set: it saw no add
		}
		op = dvv.Op{Kind: dvv.OpRemove, Element: req.Element, Context: vv}
	}
	answer, err := n.dataWrite(ctx, req.Bucket, req.Key, req.Opts, req.Forwarded, buckets.DatatypeSet, op)
	return wire.SetUpdateResp{Context: answer}, err
}

// dataWrite coordinates a datatype operation as a put is coordinated:
// here when this node holds a copy of the key, else forwarded to one that
// does. The coordinator applies the operation to its own copy's state
// under its actor for the partition (Replicas.Mint) and replicates the
// merged state; every copy merges it by the datatype's join. It returns
// the coordinator's answer (coord.ResponseContext).
func (n *Node) dataWrite(ctx context.Context, bucket string, key []byte, opts wire.Options, forwarded bool, datatype string, op dvv.Op) ([]byte, error) {
	if err := wire.ValidateKey(bucket, key, n.cfg.MaxKeySize); err != nil {
		return nil, err
	}
	props := n.bucketProps(bucket)
	if err := wantDatatype(op.Name(), bucket, props, datatype); err != nil {
		return nil, err
	}
	r := n.ring()
	spec, err := n.resolveQuorums("put", r, props, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := n.requestContext(ctx, opts.TimeoutMs)
	defer cancel()
	p := r.KeyPartition(bucket, key)
	primaries, fallbacks, pending := n.route(p, spec.N)
	w := coord.Write{Key: coord.Key{Partition: p, Bucket: bucket, Key: key}, Opts: opts, Mode: spec.Mode, Data: &op}
	route := coord.Route{Primaries: primaries, Fallbacks: fallbacks, Pending: pending, Sloppy: !opts.NoSloppy}
	return n.coord.Put(ctx, w, spec, route, forwarded)
}

// dataRead reads a datatype object as a get reads an object: the copies
// merge by the datatype's join, and read repair stores the merge on the
// copies that were behind.
func (n *Node) dataRead(ctx context.Context, op, bucket string, key []byte, opts wire.Options, datatype string) (coord.ReadResult, error) {
	if err := wire.ValidateKey(bucket, key, n.cfg.MaxKeySize); err != nil {
		return coord.ReadResult{}, err
	}
	props := n.bucketProps(bucket)
	if err := wantDatatype(op, bucket, props, datatype); err != nil {
		return coord.ReadResult{}, err
	}
	r := n.ring()
	spec, err := n.resolveQuorums("get", r, props, opts)
	if err != nil {
		return coord.ReadResult{}, err
	}
	ctx, cancel := n.requestContext(ctx, opts.TimeoutMs)
	defer cancel()
	p := r.KeyPartition(bucket, key)
	primaries, fallbacks, _ := n.route(p, spec.N)
	res, err := n.coord.Get(ctx, coord.Key{Partition: p, Bucket: bucket, Key: key}, spec,
		coord.Route{Primaries: primaries, Fallbacks: fallbacks, Sloppy: !opts.NoSloppy})
	if err != nil {
		return coord.ReadResult{}, err
	}
	if res.Omitted {
		// Too large to send: the limits on client writes keep a
		// datatype's object within a message, so only merges made it so.
		return coord.ReadResult{}, fmt.Errorf("%w: %s %s: a replica's copy is too large to send", cairn.ErrInternal, op, bucket)
	}
	return res, nil
}

func (n *Node) serveSetGet(ctx context.Context, _ transport.Peer, req wire.SetGetReq) (wire.SetGetResp, error) {
	res, err := n.dataRead(ctx, "set get", req.Bucket, req.Key, req.Opts, buckets.DatatypeSet)
	if err != nil {
		return wire.SetGetResp{}, err
	}
	set := dvv.SetOf(res.Object)
	resp := wire.SetGetResp{Found: res.Object.Found(), Elements: set.Elements(), Context: coord.ResponseContext(dvv.SetMode, res.Object), Replicas: res.Replicas}
	if !resp.Fits(n.maxFrame) {
		return wire.SetGetResp{}, cairn.InvalidArgument("set get: the set (%d elements) is too large for one answer", len(resp.Elements))
	}
	return resp, nil
}

// serveCounterGet reads a counter: its copies merge by the counter's join.
func (n *Node) serveCounterGet(ctx context.Context, _ transport.Peer, req wire.CounterGetReq) (wire.CounterGetResp, error) {
	const op = "counter get"
	res, err := n.dataRead(ctx, op, req.Bucket, req.Key, req.Opts, buckets.DatatypeCounter)
	if err != nil {
		return wire.CounterGetResp{}, err
	}
	v, ok := dvv.CounterOf(res.Object).Value()
	if !ok {
		return wire.CounterGetResp{}, cairn.InvalidArgument("%s: the counter's value is beyond the range of a 64-bit integer", op)
	}
	return wire.CounterGetResp{Found: res.Object.Found(), Value: v, Replicas: res.Replicas}, nil
}

// wantDatatype refuses an operation of datatype want (none for put, get
// and delete) on a bucket of another datatype: a plain value and a
// counter's state cannot stand in for each other, and a merge of the two
// would lose one.
func wantDatatype(op, bucket string, props buckets.Props, want string) error {
	if props.Datatype == want {
		return nil
	}
	has := props.Datatype
	if has == "" {
		has = "none"
	}
	switch props.Datatype {
	case buckets.DatatypeCounter:
		return cairn.InvalidArgument("%s: bucket %q holds counters (datatype counter); use `cairn counter incr|get`", op, bucket)
	case buckets.DatatypeSet:
		if want == "" {
			return cairn.InvalidArgument("%s: bucket %q holds sets (datatype set); use `cairn set add|remove|get`", op, bucket)
		}
	}
	return cairn.InvalidArgument("%s: bucket %q is not a %s bucket (its datatype is %s); create one with `cairn bucket create NAME --datatype %s`",
		op, bucket, want, has, want)
}
