package node

import (
	"context"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
	"go.uber.org/zap"
)

func (n *Node) put(ctx context.Context, req wire.PutReq) (wire.PutResp, error) {
	if err := wire.ValidateValue(req.Value, n.cfg.MaxValueSize); err != nil {
		return wire.PutResp{}, err
	}
	vv, err := n.write(ctx, req.Bucket, req.Key, req.Value, false, req.Context, req.Opts, req.Forwarded)
	return wire.PutResp{Context: vv}, err
}

func (n *Node) delete(ctx context.Context, req wire.DeleteReq) (wire.DeleteResp, error) {
	vv, err := n.write(ctx, req.Bucket, req.Key, nil, true, req.Context, req.Opts, req.Forwarded)
	return wire.DeleteResp{Context: vv}, err
}

// write validates a put or delete and hands it to the coordinator, which
// applies it here when this node holds the key or forwards it to a node
// that does. Everything is checked before anything is written: a bad
// request changes nothing. It returns the encoded context of the object
// after the write.
func (n *Node) write(ctx context.Context, bucket string, key, value []byte, tombstone bool, rawContext []byte, opts wire.Options, forwarded bool) ([]byte, error) {
	if err := wire.ValidateKey(bucket, key, n.cfg.MaxKeySize); err != nil {
		return nil, err
	}
	vv, stamp, err := wire.DecodeContextStamp(rawContext)
	if err != nil {
		return nil, err
	}
	op := "put"
	if tombstone {
		op = "delete"
	}
	r := n.ring()
	props := n.bucketProps(bucket)
	if err := wantDatatype(op, bucket, props, ""); err != nil {
		return nil, err
	}
	spec, err := n.resolveQuorums(op, r, props, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := n.requestContext(ctx, opts.TimeoutMs)
	defer cancel()
	p := r.KeyPartition(bucket, key)
	primaries, fallbacks, pending := n.route(p, spec.N)
	w := coord.Write{Key: coord.Key{Partition: p, Bucket: bucket, Key: key}, Value: value,
		Tombstone: tombstone, Context: vv, Stamp: stamp, Opts: opts, SiblingLimit: props.SiblingLimit, Mode: spec.Mode}
	route := coord.Route{Primaries: primaries, Fallbacks: fallbacks, Pending: pending, Sloppy: !opts.NoSloppy}
	return n.coord.Put(ctx, w, spec, route, forwarded)
}

// writeLimits bound the object a client write may leave (Config's
// SiblingLimit and MaxObjectSize). They apply to client writes only, at
// the node that mints the write's dot: replication, read repair, handoff
// and anti-entropy merge whatever they are given, since refusing a merge
// would lose a write some replica acknowledged.
type writeLimits struct {
	siblings int
	bytes    int
}

// limitError is a client write refused by a limit; err is what the client
// is told.
type limitError struct {
	reason string // "siblings" or "size", for the metric
	err    error
}

func (e *limitError) Error() string { return e.err.Error() }
func (e *limitError) Unwrap() error { return e.err }

// check refuses a write that leaves after beyond a limit while growing it
// past before. A write that does not grow the object (a put or delete
// whose context covers siblings, however many are left) always passes: it
// is how an application brings an object back within the limits.
func (l writeLimits) check(before, after dvv.Object) error {
	if n := len(after.Siblings); n > l.siblings && n > len(before.Siblings) {
		return &limitError{reason: "siblings", err: cairn.InvalidArgument(
			"too many siblings: %d; read and write back with the context to merge", n)}
	}
	if l.bytes > 0 {
		if size := after.MsgpackSize(); size > l.bytes && size > before.MsgpackSize() {
			return &limitError{reason: "size", err: cairn.InvalidArgument(
				"object too large: %d bytes after this write, more than the limit of %d; read and write back with the context to merge", size, l.bytes)}
		}
	}
	return nil
}

// checkSiblings counts and logs objects over the sibling limit after a
// client write: one that shrank an object merges had grown past it.
func (n *Node) checkSiblings(bucket string, key []byte, obj dvv.Object) {
	n.metrics.siblings.Observe(float64(len(obj.Siblings)))
	if len(obj.Siblings) > n.cfg.SiblingLimit {
		n.metrics.siblingExcess.Inc()
		n.log.Warn("object over the sibling limit",
			zap.String("bucket", bucket), zap.Binary("key", key),
			zap.Int("siblings", len(obj.Siblings)), zap.Int("limit", n.cfg.SiblingLimit))
	}
}

// hintRefused counts a hinted write refused by a hint cap and logs it, at
// most once every refusalLogEvery per cap: a fallback at its cap refuses
// every growing hinted write for the owner until handoff drains it.
func (n *Node) hintRefused(err *store.HintCapError) {
	reason := "hint_owner_bytes"
	if err.NodeWide {
		reason = "hint_node_bytes"
	}
	n.metrics.refusals.WithLabelValues(reason).Inc()
	if suppressed, ok := n.refusals.allow(reason, n.now()); ok {
		n.log.Warn("refused a hinted write: hint cap reached", zap.String("reason", reason),
			zap.String("owner", err.Owner), zap.Int64("held_bytes", err.Held), zap.Int64("write_bytes", err.Growth),
			zap.Int64("cap_bytes", err.Cap), zap.Int("same_refusals_not_logged", suppressed))
	}
}
