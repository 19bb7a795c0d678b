package node

import (
	"context"

	"github.com/cairnkv/cairn/internal/dvv"
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
	vv, err := wire.DecodeContext(rawContext)
	if err != nil {
		return nil, err
	}
	op := "put"
	if tombstone {
		op = "delete"
	}
	r := n.ring()
	spec, err := n.resolveQuorums(op, r, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := n.requestContext(ctx, opts.TimeoutMs)
	defer cancel()
	p := r.KeyPartition(bucket, key)
	primaries, fallbacks := r.Preference(p, spec.N)
	w := coord.Write{Key: coord.Key{Partition: p, Bucket: bucket, Key: key}, Value: value,
		Tombstone: tombstone, Context: vv, Opts: opts}
	route := coord.Route{Primaries: primaries, Fallbacks: fallbacks, Sloppy: !opts.NoSloppy}
	return n.coord.Put(ctx, w, spec, route, forwarded)
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
