package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
)

// downFor is how long a node that refused a connection is treated as down
// before memberlist's own verdict is trusted again; it keeps requests from
// dialling a dead node on every call in the seconds before gossip notices.
const downFor = 2 * time.Second

// liveness combines memberlist's view with recent request failures.
type liveness struct {
	mu   sync.Mutex
	down map[string]time.Time // node -> until
}

// up reports whether a node should be asked: itself always; others when
// memberlist has them alive and no recent connection failure says otherwise.
func (n *Node) up(node string) bool {
	if node == n.cfg.Name {
		return true
	}
	if !n.members.Alive(node) {
		return false
	}
	n.live.mu.Lock()
	defer n.live.mu.Unlock()
	until, ok := n.live.down[node]
	if ok && n.now().Before(until) {
		return false
	}
	delete(n.live.down, node)
	return true
}

func (n *Node) markDown(node string, err error) {
	if !transport.IsDialError(err) {
		return
	}
	n.live.mu.Lock()
	defer n.live.mu.Unlock()
	if n.live.down == nil {
		n.live.down = make(map[string]time.Time)
	}
	n.live.down[node] = n.now().Add(downFor)
}

// replicaGet reads one target's copy, locally or over the wire. A
// fallback's copy is the hint it keeps for the primary it stands in for.
func (n *Node) replicaGet(ctx context.Context, t quorum.Target, p uint32, bucket string, key []byte) (dvv.Object, bool, error) {
	return n.replicaGetReq(ctx, t.Node, wire.ReplicaGetReq{Partition: p, Bucket: bucket, Key: key, For: t.For})
}

func (n *Node) replicaGetReq(ctx context.Context, node string, req wire.ReplicaGetReq) (dvv.Object, bool, error) {
	if node == n.cfg.Name {
		return n.localGet(ctx, req)
	}
	addr, ok := n.members.Addr(node)
	if !ok {
		return dvv.Object{}, false, fmt.Errorf("%w: no address for %s", cairn.ErrUnavailable, node)
	}
	var resp wire.ReplicaGetResp
	if err := n.peers.Call(ctx, addr, wire.TypeReplicaGet, req, &resp); err != nil {
		n.markDown(node, err)
		return dvv.Object{}, false, err
	}
	return resp.Object, resp.Found, nil
}

// replicaPut syncs an object into one target's copy, locally or over the
// wire, and reports whether the target made it durable.
func (n *Node) replicaPut(ctx context.Context, t quorum.Target, p uint32, bucket string, key []byte, obj dvv.Object, sync bool) (bool, error) {
	if t.Node == n.cfg.Name {
		return n.localSync(ctx, p, bucket, key, obj, sync, t.For)
	}
	addr, ok := n.members.Addr(t.Node)
	if !ok {
		return false, fmt.Errorf("%w: no address for %s", cairn.ErrUnavailable, t.Node)
	}
	var resp wire.ReplicaPutResp
	req := wire.ReplicaPutReq{Partition: p, Bucket: bucket, Key: key, Object: obj, Sync: sync, For: t.For}
	if err := n.peers.Call(ctx, addr, wire.TypeReplicaPut, req, &resp); err != nil {
		n.markDown(t.Node, err)
		return false, err
	}
	return resp.Durable, nil
}

// localGet reads this node's copy: its own data, merged with the hint it
// keeps for req.For (or with every hint for the key, for AllHints).
func (n *Node) localGet(ctx context.Context, req wire.ReplicaGetReq) (dvv.Object, bool, error) {
	if err := ctx.Err(); err != nil {
		return dvv.Object{}, false, fmt.Errorf("%w: %v", cairn.ErrTimeout, err)
	}
	obj, found, err := n.store.Get(req.Partition, req.Bucket, req.Key)
	if err != nil {
		return dvv.Object{}, false, fmt.Errorf("%w: read: %v", cairn.ErrInternal, err)
	}
	var owners []string
	switch {
	case req.AllHints:
		for owner := range n.store.HintStats() {
			owners = append(owners, owner)
		}
	case req.For != "":
		owners = []string{req.For}
	}
	for _, owner := range owners {
		h, ok, err := n.store.GetHint(store.HintRef{Owner: owner, Partition: req.Partition, Bucket: req.Bucket, Key: req.Key})
		if err != nil {
			return dvv.Object{}, false, fmt.Errorf("%w: read hint: %v", cairn.ErrInternal, err)
		}
		if ok {
			obj, found = dvv.Sync(obj, h), true
		}
	}
	return obj, found, nil
}

// localSync merges a replicated object into the local copy: this node's
// own data, or, when it stands in for the primary named by forOwner, the
// hint it keeps for that primary. It never overwrites: what the local copy
// holds that the incoming one has not seen survives as siblings. Nothing is
// written when the local copy already descends the incoming one.
func (n *Node) localSync(ctx context.Context, p uint32, bucket string, key []byte, obj dvv.Object, sync bool, forOwner string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %v", cairn.ErrTimeout, err)
	}
	durable := sync || !n.cfg.NoSyncWrites
	merge := func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		if found && cur.Descends(obj) {
			return cur, false, nil
		}
		return dvv.Sync(cur, obj), true, nil
	}
	var err error
	if forOwner != "" {
		_, err = n.store.ModifyHint(store.HintRef{Owner: forOwner, Partition: p, Bucket: bucket, Key: key}, durable, n.now().UnixNano(), merge)
		if err == nil {
			n.handoff.HintStored()
		}
	} else {
		_, err = n.store.Modify(p, bucket, key, durable, merge)
	}
	if err != nil {
		return false, fmt.Errorf("%w: replica write: %v", cairn.ErrInternal, err)
	}
	return durable, nil
}

// serveReplicaGet and serveReplicaPut answer peers. Only peers (connections
// whose handshake named a node) may use them.
func (n *Node) serveReplicaGet(ctx context.Context, peer transport.Peer, req wire.ReplicaGetReq) (wire.ReplicaGetResp, error) {
	if err := n.checkReplicaRequest(peer, req.Partition, req.Bucket, req.Key); err != nil {
		return wire.ReplicaGetResp{}, err
	}
	if req.For != "" && !validOwner(req.For) {
		return wire.ReplicaGetResp{}, cairn.InvalidArgument("for %q is not a node name", req.For)
	}
	obj, found, err := n.localGet(ctx, req)
	return wire.ReplicaGetResp{Found: found, Object: obj}, err
}

func (n *Node) serveReplicaPut(ctx context.Context, peer transport.Peer, req wire.ReplicaPutReq) (wire.ReplicaPutResp, error) {
	if err := n.checkReplicaRequest(peer, req.Partition, req.Bucket, req.Key); err != nil {
		return wire.ReplicaPutResp{}, err
	}
	if req.For != "" && !validOwner(req.For) {
		return wire.ReplicaPutResp{}, cairn.InvalidArgument("for %q is not a node name", req.For)
	}
	if req.For == n.cfg.Name {
		req.For = "" // a hint for this node is this node's own data
	}
	durable, err := n.localSync(ctx, req.Partition, req.Bucket, req.Key, req.Object, req.Sync, req.For)
	return wire.ReplicaPutResp{Durable: durable}, err
}

// validOwner bounds the owner a peer names in a hint: a node name.
func validOwner(name string) bool {
	return name != "" && len(name) <= store.MaxOwnerBytes && !strings.ContainsAny(name, " \t\n/")
}

func (n *Node) checkReplicaRequest(peer transport.Peer, p uint32, bucket string, key []byte) error {
	if peer.Node == "" {
		return cairn.InvalidArgument("replica messages are for peers: the handshake named no node")
	}
	if int(p) >= n.cfg.Partitions {
		return cairn.InvalidArgument("partition %d out of range (q=%d)", p, n.cfg.Partitions)
	}
	if err := wire.ValidateKey(bucket, key, n.cfg.MaxKeySize); err != nil {
		return err
	}
	if n.ring().KeyPartition(bucket, key) != p {
		return cairn.InvalidArgument("key does not belong to partition %d", p)
	}
	return nil
}
