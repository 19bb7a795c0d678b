package node

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/buckets"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"go.uber.org/zap"
)

// bucketTable is the bucket properties of one metadata generation.
type bucketTable struct {
	gen   uint64
	props map[string]buckets.Props
}

type bucketCache struct{ cur atomic.Pointer[bucketTable] }

// bucketTable returns the configured buckets' properties, rebuilding the
// table when the metadata moved on since it was built: a request pays an
// atomic load and a map lookup.
func (n *Node) bucketTable() *bucketTable {
	gen := n.members.MetaGeneration()
	if t := n.bucketCache.cur.Load(); t != nil && t.gen == gen {
		return t
	}
	t := &bucketTable{gen: gen, props: map[string]buckets.Props{}}
	for _, e := range n.members.MetaPrefix(buckets.MetaPrefix) {
		p, err := buckets.Decode(e.Value)
		if err != nil {
			// Gossip validated the entry, not the record inside it: the
			// bucket takes the cluster's defaults until it is set again.
			n.log.Warn("bucket record unreadable: the bucket takes the cluster's defaults", zap.String("bucket", e.Key), zap.Error(err))
			continue
		}
		t.props[e.Key] = p
	}
	n.bucketCache.cur.Store(t)
	return t
}

// bucketProps returns bucket's properties: the cluster's defaults for a
// bucket never configured.
func (n *Node) bucketProps(bucket string) buckets.Props {
	if p, ok := n.bucketTable().props[bucket]; ok {
		return p
	}
	return buckets.Defaults()
}

// bucketMode is how bucket resolves concurrent writes: the merge every
// copy of its objects meets, here and in the drivers.
func (n *Node) bucketMode(bucket string) dvv.Mode { return n.bucketProps(bucket).Mode() }

func bucketInfo(name string, p buckets.Props, created bool) wire.BucketInfo {
	return wire.BucketInfo{Name: name, Created: created, N: p.N, R: p.R, W: p.W, PR: p.PR, PW: p.PW, DW: p.DW,
		NotFoundOK: p.NotFoundOK, Conflict: p.Conflict, Datatype: p.Datatype, SiblingLimit: p.SiblingLimit, DeleteGrace: p.DeleteGrace}
}

// serveBuckets answers one bucket's properties (its defaults when never
// configured) or every configured bucket's.
func (n *Node) serveBuckets(_ context.Context, _ transport.Peer, req wire.BucketsReq) (wire.BucketsResp, error) {
	t := n.bucketTable()
	if req.Name != "" {
		if err := wire.ValidateKey(req.Name, []byte{0}, n.cfg.MaxKeySize); err != nil {
			return wire.BucketsResp{}, err
		}
		p, ok := t.props[req.Name]
		if !ok {
			p = buckets.Defaults()
		}
		return wire.BucketsResp{Buckets: []wire.BucketInfo{bucketInfo(req.Name, p, ok)}}, nil
	}
	var resp wire.BucketsResp
	for _, e := range n.members.MetaPrefix(buckets.MetaPrefix) {
		if p, ok := t.props[e.Key]; ok {
			resp.Buckets = append(resp.Buckets, bucketInfo(e.Key, p, true))
		}
	}
	return resp, nil
}

// serveBucketSet creates or changes a bucket's properties in the cluster
// metadata, which gossip takes to every node. Two operators creating the
// same bucket on two nodes at once both succeed, and the later version
// wins everywhere.
func (n *Node) serveBucketSet(_ context.Context, _ transport.Peer, req wire.BucketSetReq) (wire.BucketSetResp, error) {
	verb := "set"
	if req.Create {
		verb = "create"
	}
	if err := wire.ValidateKey(req.Name, []byte{0}, n.cfg.MaxKeySize); err != nil {
		return wire.BucketSetResp{}, fmt.Errorf("bucket %s: %w", verb, err)
	}
	cur, exists := n.bucketTable().props[req.Name]
	switch {
	case req.Create && exists:
		return wire.BucketSetResp{}, cairn.InvalidArgument("bucket create %s: the bucket exists; change it with `cairn bucket set`", req.Name)
	case !req.Create && !exists:
		return wire.BucketSetResp{}, fmt.Errorf("bucket set %.64q: no such bucket (create it with `cairn bucket create`): %w", req.Name, cairn.ErrNotFound)
	case !exists:
		cur = buckets.Defaults()
	}
	next, err := buckets.Apply(cur, buckets.Change{N: req.N, R: req.R, W: req.W, PR: req.PR, PW: req.PW, DW: req.DW,
		NotFoundOK: req.NotFoundOK, Conflict: req.Conflict, Datatype: req.Datatype, SiblingLimit: req.SiblingLimit, DeleteGrace: req.DeleteGrace}, req.Create)
	if err != nil {
		return wire.BucketSetResp{}, fmt.Errorf("bucket %s %s: %w", verb, req.Name, err)
	}
	if err := n.members.SetMeta(buckets.MetaPrefix, req.Name, buckets.Encode(next)); err != nil {
		return wire.BucketSetResp{}, err
	}
	n.log.Info("bucket properties changed", zap.String("bucket", req.Name), zap.String("op", verb))
	return wire.BucketSetResp{Bucket: bucketInfo(req.Name, next, true)}, nil
}
