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

// serveCounterIncr coordinates an increment as a put is coordinated: here
// when this node holds a copy of the key, else forwarded to one that does.
// The coordinator adds the delta to its own copy's state under its actor
// for the partition (Replicas.Mint) and replicates the merged state; every
// copy merges it by the counter's join.
func (n *Node) serveCounterIncr(ctx context.Context, _ transport.Peer, req wire.CounterIncrReq) (wire.CounterIncrResp, error) {
	const op = "counter incr"
	if err := wire.ValidateKey(req.Bucket, req.Key, n.cfg.MaxKeySize); err != nil {
		return wire.CounterIncrResp{}, err
	}
	props := n.bucketProps(req.Bucket)
	if err := wantDatatype(op, req.Bucket, props, buckets.DatatypeCounter); err != nil {
		return wire.CounterIncrResp{}, err
	}
	r := n.ring()
	spec, err := n.resolveQuorums("put", r, props, req.Opts)
	if err != nil {
		return wire.CounterIncrResp{}, err
	}
	ctx, cancel := n.requestContext(ctx, req.Opts.TimeoutMs)
	defer cancel()
	p := r.KeyPartition(req.Bucket, req.Key)
	primaries, fallbacks, pending := n.route(p, spec.N)
	w := coord.Write{Key: coord.Key{Partition: p, Bucket: req.Bucket, Key: req.Key}, Opts: req.Opts,
		Mode: spec.Mode, Data: &dvv.Op{Delta: req.Delta}}
	route := coord.Route{Primaries: primaries, Fallbacks: fallbacks, Pending: pending, Sloppy: !req.Opts.NoSloppy}
	answer, err := n.coord.Put(ctx, w, spec, route, req.Forwarded)
	if err != nil {
		return wire.CounterIncrResp{}, err
	}
	v, err := coord.ReadCounterAnswer(answer)
	return wire.CounterIncrResp{Value: v}, err
}

// serveCounterGet reads a counter as a get reads an object: the copies
// merge by the counter's join, and read repair stores the merge on the
// copies that were behind.
func (n *Node) serveCounterGet(ctx context.Context, _ transport.Peer, req wire.CounterGetReq) (wire.CounterGetResp, error) {
	const op = "counter get"
	if err := wire.ValidateKey(req.Bucket, req.Key, n.cfg.MaxKeySize); err != nil {
		return wire.CounterGetResp{}, err
	}
	props := n.bucketProps(req.Bucket)
	if err := wantDatatype(op, req.Bucket, props, buckets.DatatypeCounter); err != nil {
		return wire.CounterGetResp{}, err
	}
	r := n.ring()
	spec, err := n.resolveQuorums("get", r, props, req.Opts)
	if err != nil {
		return wire.CounterGetResp{}, err
	}
	ctx, cancel := n.requestContext(ctx, req.Opts.TimeoutMs)
	defer cancel()
	p := r.KeyPartition(req.Bucket, req.Key)
	primaries, fallbacks, _ := n.route(p, spec.N)
	res, err := n.coord.Get(ctx, coord.Key{Partition: p, Bucket: req.Bucket, Key: req.Key}, spec,
		coord.Route{Primaries: primaries, Fallbacks: fallbacks, Sloppy: !req.Opts.NoSloppy})
	if err != nil {
		return wire.CounterGetResp{}, err
	}
	if res.Omitted {
		// A counter holds a few dozen bytes per actor; a copy too large to
		// send is not one a counter write made.
		return wire.CounterGetResp{}, fmt.Errorf("%w: %s %s: a replica's copy is too large to send", cairn.ErrInternal, op, req.Bucket)
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
	}
	return cairn.InvalidArgument("%s: bucket %q is not a %s bucket (its datatype is %s); create one with `cairn bucket create NAME --datatype %s`",
		op, bucket, want, has, want)
}
