package node

import (
	"context"
	"slices"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
)

// get validates a get and hands it to the coordinator: every target of the
// key is asked in parallel, the answer goes out once R of them (PR
// primaries) have answered, and the targets whose copies were behind are
// repaired in the background.
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
	if !slices.Contains(primaries, n.cfg.Name) {
		n.metrics.remoteGets.Inc()
	}
	res, err := n.coord.Get(ctx, coord.Key{Partition: p, Bucket: req.Bucket, Key: req.Key}, spec,
		coord.Route{Primaries: primaries, Fallbacks: fallbacks, Sloppy: !req.Opts.NoSloppy})
	if err != nil {
		return wire.GetResp{}, err
	}
	resp := getResponse(res.Object, res.Replicas)
	resp.Fallbacks = res.Fallbacks
	return resp, nil
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
