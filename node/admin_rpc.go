package node

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
	"github.com/cairnkv/cairn/quorum"
	"go.uber.org/zap"
)

func (n *Node) serveMembers() wire.MembersResp {
	var resp wire.MembersResp
	r := n.ring()
	for _, m := range n.members.Members() {
		resp.Members = append(resp.Members, wire.MemberInfo{
			Name: m.Name, Addr: m.Addr, Gossip: m.Gossip, Status: string(m.Status),
			Version: m.Version, Alive: n.members.Alive(m.Name), Seat: r.Seat(m.Name),
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
		Admin: n.AdminAddr(),
	}
	st := n.store.Stats()
	resp.DiskBytes, resp.ObjectBytes, resp.Reaped = st.DiskBytes, st.ObjectBytes, st.Reaped
	if n.reaper != nil {
		resp.ReapPaused = n.reaper.Blocked()
	}
	return resp
}

// serveDebugReplicas shows each target's own copy of a key, unmerged, so a
// person can see divergence and watch it repair. It never repairs anything.
func (n *Node) serveDebugReplicas(ctx context.Context, _ transport.Peer, req wire.DebugReplicasReq) (wire.DebugReplicasResp, error) {
	if err := wire.ValidateKey(req.Bucket, req.Key, n.cfg.MaxKeySize); err != nil {
		return wire.DebugReplicasResp{}, err
	}
	ctx, cancel := n.requestContext(ctx, req.TimeoutMs)
	defer cancel()
	r := n.ring()
	p := r.KeyPartition(req.Bucket, req.Key)
	replicas := n.replicationFactor(r)
	if b := n.bucketProps(req.Bucket); b.N > 0 {
		replicas = min(b.N, len(r.Members()))
	}
	primaries, fallbacks := r.Preference(p, replicas)
	var targets []quorum.Target
	for _, node := range primaries {
		targets = append(targets, quorum.Target{Node: node, Primary: true})
	}
	for _, node := range fallbacks {
		targets = append(targets, quorum.Target{Node: node})
	}
	resp := wire.DebugReplicasResp{Partition: p}
	copies := make([]wire.ReplicaCopy, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A fallback's copy is whatever hints it keeps for the key.
			req := wire.ReplicaGetReq{Partition: p, Bucket: req.Bucket, Key: req.Key, AllHints: !t.Primary}
			var answer wire.ReplicaGetResp
			var err error
			if t.Node == n.cfg.Name {
				var obj dvv.Object
				var found bool
				if obj, found, err = n.replicas.localGet(ctx, req); err == nil {
					answer = n.replicas.replicaGetAnswer(req, obj, found)
				}
			} else {
				err = n.replicas.peers.Call(ctx, t.Node, wire.TypeReplicaGet, req, &answer)
			}
			c := wire.ReplicaCopy{Node: t.Node, Primary: t.Primary, Found: answer.Found, Object: answer.Object}
			switch {
			case err != nil:
				c.Err = coord.Reason(err)
			case answer.Omitted:
				c.Object = dvv.Object{VV: answer.Object.VV}
				c.Err = fmt.Sprintf("copy too large to send: %d live siblings; its version vector only", answer.Live)
			}
			copies[i] = c
		}()
	}
	wg.Wait()
	for _, c := range copies {
		if c.Primary || c.Found {
			resp.Replicas = append(resp.Replicas, c)
		}
	}
	return resp, nil
}

// serveRingState gives a client what it needs to route each request straight
// to a replica of its key: the ring's inputs, the members' data addresses and
// this node's view of their liveness.
func (n *Node) serveRingState() wire.RingStateResp {
	r := n.ring()
	resp := wire.RingStateResp{
		Node: n.cfg.Name, Partitions: r.Partitions(), N: n.cfg.N, Version: r.Version(),
		MaxKeySize: n.cfg.MaxKeySize, MaxValueSize: n.cfg.MaxValueSize,
		RequestTimeoutMs: uint32(min(n.cfg.RequestTimeout.Milliseconds(), math.MaxUint32)),
		MaxFrame:         n.maxFrame, MaxObjectSize: n.cfg.objectSizeLimit(), SiblingLimit: n.cfg.SiblingLimit,
	}
	for _, m := range n.members.Members() {
		resp.Members = append(resp.Members, wire.MemberInfo{
			Name: m.Name, Addr: m.Addr, Gossip: m.Gossip, Status: string(m.Status),
			Version: m.Version, Alive: n.up(m.Name), Seat: r.Seat(m.Name),
		})
	}
	return resp
}

// serveRemoveMember is the operator's removal of a member. A member this
// node sees alive is refused without Force: its replicas would vanish from
// the ring with nothing handed off.
func (n *Node) serveRemoveMember(_ context.Context, _ transport.Peer, req wire.RemoveMemberReq) (wire.RemoveMemberResp, error) {
	if req.Name == "" {
		return wire.RemoveMemberResp{}, cairn.InvalidArgument("remove: a member name is required")
	}
	if _, ok := n.members.Addr(req.Name); !ok {
		return wire.RemoveMemberResp{}, fmt.Errorf("remove %.64q: no such member: %w", req.Name, cairn.ErrNotFound)
	}
	if !req.Force && n.members.Alive(req.Name) {
		return wire.RemoveMemberResp{}, cairn.InvalidArgument(
			"remove %s: the member is alive (as %s sees it); stop it first, or force the removal knowing its replicas are dropped without handoff", req.Name, n.cfg.Name)
	}
	if err := n.members.Remove(req.Name); err != nil {
		return wire.RemoveMemberResp{}, err
	}
	n.log.Info("member removed by an operator", zap.String("member", req.Name), zap.Bool("force", req.Force))
	return wire.RemoveMemberResp{RingVersion: n.ring().Version()}, nil
}

// leaveTimeout bounds handing a leave to the member that leaves.
const leaveTimeout = 5 * time.Second

// serveLeave makes a member leave: this node when it is the one named,
// else the named member, which must be alive (only a member changes its
// own entry; a dead one is removed with remove).
func (n *Node) serveLeave(ctx context.Context, _ transport.Peer, req wire.LeaveReq) (wire.LeaveResp, error) {
	if req.Name == "" {
		return wire.LeaveResp{}, cairn.InvalidArgument("leave: a member name is required")
	}
	m, ok := n.members.Member(req.Name)
	if !ok {
		return wire.LeaveResp{}, fmt.Errorf("leave %.64q: no such member: %w", req.Name, cairn.ErrNotFound)
	}
	if req.Name == n.cfg.Name {
		if err := n.members.Leave(); err != nil {
			return wire.LeaveResp{}, err
		}
		n.log.Info("leaving the ring: partitions move to the other members, then this node exits")
		n.transfer.Poke()
		return wire.LeaveResp{}, nil
	}
	if m.Status == membership.StatusRemoved || !n.members.Alive(req.Name) {
		return wire.LeaveResp{}, cairn.InvalidArgument(
			"leave %s: it is %s and %s; only a live member can leave (remove a dead one)", req.Name, m.Status, aliveWord(n.members.Alive(req.Name)))
	}
	cctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	var resp wire.LeaveResp
	if err := (peerCaller{n: n}).Call(cctx, req.Name, wire.TypeLeave, req, &resp); err != nil {
		return wire.LeaveResp{}, fmt.Errorf("leave %s: %w", req.Name, err)
	}
	return resp, nil
}

// serveReplace makes member New take member Old's place: this node when
// it is New, else New, which must be alive (only a member changes its own
// entry).
func (n *Node) serveReplace(ctx context.Context, _ transport.Peer, req wire.ReplaceReq) (wire.ReplaceResp, error) {
	if req.Old == "" || req.New == "" {
		return wire.ReplaceResp{}, cairn.InvalidArgument("replace: the member to replace and the one taking its place are required")
	}
	m, ok := n.members.Member(req.New)
	if !ok {
		return wire.ReplaceResp{}, fmt.Errorf("replace %s %.64q: no such member (start it with --join first): %w", req.Old, req.New, cairn.ErrNotFound)
	}
	if req.New == n.cfg.Name {
		if err := n.members.Replace(req.Old); err != nil {
			return wire.ReplaceResp{}, err
		}
		n.log.Info("replacing a member: its partitions move to this node, then it is removed", zap.String("replaces", req.Old))
		n.transfer.Poke()
		return wire.ReplaceResp{}, nil
	}
	if m.Status == membership.StatusRemoved || !n.members.Alive(req.New) {
		return wire.ReplaceResp{}, cairn.InvalidArgument(
			"replace %s %s: %s is %s and %s; the node taking the place must be running", req.Old, req.New, req.New, m.Status, aliveWord(n.members.Alive(req.New)))
	}
	cctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	var resp wire.ReplaceResp
	if err := (peerCaller{n: n}).Call(cctx, req.New, wire.TypeReplace, req, &resp); err != nil {
		return wire.ReplaceResp{}, fmt.Errorf("replace %s %s: %w", req.Old, req.New, err)
	}
	return resp, nil
}

// maxJoinSeeds bounds a join request's seeds.
const maxJoinSeeds = 64

// serveJoin makes this node, alone in its ring and holding no key, join
// the cluster of the seeds as a joining node (the transfer brings its
// partitions). A node that holds keys is refused: they belong to the
// cluster it made alone, and a join would not move them.
func (n *Node) serveJoin(_ context.Context, _ transport.Peer, req wire.JoinReq) (wire.JoinResp, error) {
	if len(req.Seeds) > maxJoinSeeds {
		return wire.JoinResp{}, cairn.InvalidArgument("join: %d seeds, at most %d", len(req.Seeds), maxJoinSeeds)
	}
	for p := range uint32(n.cfg.Partitions) {
		held := false
		if err := n.store.ScanPartition(p, func(string, []byte, dvv.Object) (bool, error) {
			held = true
			return false, nil
		}); err != nil {
			return wire.JoinResp{}, err
		}
		if held {
			return wire.JoinResp{}, cairn.InvalidArgument(
				"join: %s holds keys of its own (partition %d): they would not move to the cluster it joins; start the node with an empty data directory", n.cfg.Name, p)
		}
	}
	if err := n.members.JoinCluster(req.Seeds); err != nil {
		return wire.JoinResp{}, err
	}
	n.log.Info("joining a cluster: partitions are streamed here, then this node owns them", zap.Strings("seeds", req.Seeds))
	n.transfer.Poke()
	return wire.JoinResp{}, nil
}

func aliveWord(alive bool) string {
	if alive {
		return "alive"
	}
	return "not alive"
}
