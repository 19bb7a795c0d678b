package node

import (
	"context"
	"slices"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
	"go.uber.org/zap"
)

// get validates a get and hands it to the coordinator: every target of the
// key is asked in parallel, the answer goes out once R of them (PR
// primaries) have answered, and the targets whose copies were behind are
// repaired in the background.
func (n *Node) get(ctx context.Context, req wire.GetReq) (wire.GetResp, error) {
	if err := wire.ValidateKey(req.Bucket, req.Key, n.cfg.MaxKeySize); err != nil {
		return wire.GetResp{}, err
	}
	props := n.bucketProps(req.Bucket)
	if err := wantDatatype("get", req.Bucket, props, ""); err != nil {
		return wire.GetResp{}, err
	}
	r := n.ring()
	spec, err := n.resolveQuorums("get", r, props, req.Opts)
	if err != nil {
		return wire.GetResp{}, err
	}
	ctx, cancel := n.requestContext(ctx, req.Opts.TimeoutMs)
	defer cancel()
	p := r.KeyPartition(req.Bucket, req.Key)
	primaries, fallbacks, _ := n.route(p, spec.N)
	if !slices.Contains(primaries, n.cfg.Name) {
		n.metrics.remoteGets.Inc()
	}
	res, err := n.coord.Get(ctx, coord.Key{Partition: p, Bucket: req.Bucket, Key: req.Key}, spec,
		coord.Route{Primaries: primaries, Fallbacks: fallbacks, Sloppy: !req.Opts.NoSloppy})
	if err != nil {
		return wire.GetResp{}, err
	}
	resp := getResponse(res, spec.Mode, n.maxFrame)
	if resp.ValuesOmitted {
		n.metrics.omitted.Inc()
		n.log.Warn("get answered without values: too large to send",
			zap.String("bucket", req.Bucket), zap.Binary("key", req.Key),
			zap.Int("siblings", resp.SiblingCount), zap.Bool("copy_omitted", res.Omitted))
	}
	return resp, nil
}

// getResponse shapes a get's result for a client: live siblings only, and
// the context even when nothing is live, so a later put can supersede the
// tombstones cleanly.
//
// The context always goes out. When the values cannot (the answer would
// break the frame or element limit, or a replica's copy was too large to
// send at all), the answer carries the context, the count of live
// siblings and ValuesOmitted: the application can still collapse the
// object by writing with that context, which is what brings it back within
// the limits. The context then covers siblings the client never saw; that
// is what the flag tells it.
func getResponse(res coord.ReadResult, mode dvv.Mode, maxFrame int) wire.GetResp {
	obj := res.Object
	live := obj.Live()
	resp := wire.GetResp{Found: len(live) > 0, Context: coord.ResponseContext(mode, obj), Replicas: res.Replicas, Fallbacks: res.Fallbacks}
	if res.Omitted {
		return omitValues(resp, mode, dvv.Object{Siblings: obj.Siblings, VV: obj.VV.Merge(res.OmittedVV)}, max(len(live), res.OmittedLive))
	}
	for _, s := range live {
		resp.Siblings = append(resp.Siblings, wire.Sibling{Value: s.Value, WrittenAt: s.WrittenAt})
	}
	if !resp.Fits(maxFrame) {
		return omitValues(resp, mode, obj, len(live))
	}
	return resp
}

// omitValues turns a get's answer into its context-only form: the context
// of obj.
func omitValues(resp wire.GetResp, mode dvv.Mode, obj dvv.Object, live int) wire.GetResp {
	resp.Found = live > 0
	resp.Siblings = nil
	resp.Context = coord.ResponseContext(mode, obj)
	resp.ValuesOmitted = true
	resp.SiblingCount = live
	return resp
}
