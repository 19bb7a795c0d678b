package node

import (
	"context"
	"slices"

	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
)

func (n *Node) serveMembers() wire.MembersResp {
	var resp wire.MembersResp
	for _, m := range n.members.Members() {
		resp.Members = append(resp.Members, wire.MemberInfo{
			Name: m.Name, Addr: m.Addr, Gossip: m.Gossip, Status: string(m.Status),
			Version: m.Version, Alive: n.members.Alive(m.Name),
		})
	}
	return resp
}

func (n *Node) serveRing() wire.RingResp {
	r := n.ring()
	resp := wire.RingResp{Partitions: r.Partitions(), N: n.replicationFactor(r), Version: r.Version(), Owned: map[string]int{}}
	for _, m := range r.Members() {
		resp.Members = append(resp.Members, m)
		resp.Owned[m] = len(r.Owned(m))
	}
	return resp
}

func (n *Node) serveStatus() wire.StatusResp {
	r := n.ring()
	members := n.members.Members()
	resp := wire.StatusResp{
		Node: n.cfg.Name, Addr: n.Addr(), Cluster: n.cfg.Cluster,
		UptimeMs:    n.now().Sub(n.started).Milliseconds(),
		RingVersion: r.Version(), Partitions: r.Partitions(), N: n.replicationFactor(r),
		Members: len(members), Alive: n.aliveCount(),
		DiskBytes: n.store.Stats().DiskBytes,
	}
	return resp
}

// serveDebugReplicas shows each target's own copy of a key, unmerged, so a
// person can see divergence and watch it repair. It never repairs anything.
func (n *Node) serveDebugReplicas(ctx context.Context, req wire.DebugReplicasReq) (wire.DebugReplicasResp, error) {
	if err := wire.ValidateKey(req.Bucket, req.Key, n.cfg.MaxKeySize); err != nil {
		return wire.DebugReplicasResp{}, err
	}
	ctx, cancel := n.requestContext(ctx, req.TimeoutMs)
	defer cancel()
	r := n.ring()
	p := r.KeyPartition(req.Bucket, req.Key)
	primaries, fallbacks := r.Preference(p, n.replicationFactor(r))
	var targets []quorum.Target
	for _, node := range primaries {
		targets = append(targets, quorum.Target{Node: node, Primary: true})
	}
	for _, node := range fallbacks {
		targets = append(targets, quorum.Target{Node: node})
	}
	resp := wire.DebugReplicasResp{Partition: p}
	for res := range n.fanOut(ctx, targets, func(ctx context.Context, t quorum.Target) replicaResult {
		obj, found, err := n.replicaGet(ctx, t.Node, p, req.Bucket, req.Key)
		return replicaResult{node: t.Node, obj: obj, found: found, err: err}
	}) {
		c := wire.ReplicaCopy{Node: res.node, Primary: slices.Contains(primaries, res.node), Found: res.found}
		if res.err != nil {
			c.Err = reason(res.err)
		} else {
			c.Object = res.obj
		}
		if c.Primary || c.Found {
			resp.Replicas = append(resp.Replicas, c)
		}
	}
	slices.SortFunc(resp.Replicas, func(a, b wire.ReplicaCopy) int {
		return slices.Index(append(slices.Clone(primaries), fallbacks...), a.Node) -
			slices.Index(append(slices.Clone(primaries), fallbacks...), b.Node)
	})
	return resp, nil
}
