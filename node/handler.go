package node

import (
	"context"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// handler serves one request type: it decodes the body and returns the
// answer, whose type is the request's plus one.
type handler func(ctx context.Context, peer transport.Peer, body []byte) (any, error)

// handlers is the node's dispatch table: serving a new message type is one
// line here.
func (n *Node) handlers() map[wire.Type]handler {
	return map[wire.Type]handler{
		wire.TypeGet:             decoding(wire.GetReq{Opts: wire.DefaultOptions()}, n.serveGet),
		wire.TypePut:             decoding(wire.PutReq{Opts: wire.DefaultOptions()}, n.servePut),
		wire.TypeDelete:          decoding(wire.DeleteReq{Opts: wire.DefaultOptions()}, n.serveDelete),
		wire.TypeReplicaGet:      decoding(wire.ReplicaGetReq{}, n.serveReplicaGet),
		wire.TypeReplicaPut:      decoding(wire.ReplicaPutReq{}, n.serveReplicaPut),
		wire.TypeReplicaPutBatch: decoding(wire.ReplicaPutBatchReq{}, n.serveReplicaPutBatch),
		wire.TypeHandoff:         decoding(wire.HandoffReq{}, n.handoff.ServeHandoff),
		wire.TypeHints:           decoding(wire.HintsReq{}, n.handoff.ServeHints),
		wire.TypeMembers:         bodiless(n.serveMembers),
		wire.TypeRing:            bodiless(n.serveRing),
		wire.TypeStatus:          bodiless(n.serveStatus),
		wire.TypeDebugReplicas:   decoding(wire.DebugReplicasReq{}, n.serveDebugReplicas),
		wire.TypeRingState:       bodiless(n.serveRingState),
		wire.TypeRemoveMember:    decoding(wire.RemoveMemberReq{}, n.serveRemoveMember),
		wire.TypeKeyring:         decoding(wire.KeyringReq{}, n.serveKeyring),
		wire.TypeAAEQuery:        decoding(wire.AAEQueryReq{}, n.aae.ServeQuery),
		wire.TypeAAEFetch:        decoding(wire.AAEFetchReq{}, n.aae.ServeFetch),
		wire.TypeAAEPush:         decoding(wire.AAEPushReq{}, n.aae.ServePush),
		wire.TypeAAEStatus:       decoding(wire.AAEStatusReq{}, n.aae.ServeStatus),
		wire.TypeTransferPush:    decoding(wire.TransferPushReq{}, n.transfer.ServePush),
		wire.TypeTransferDone:    decoding(wire.TransferDoneReq{}, n.transfer.ServeDone),
		wire.TypeTransfers:       decoding(wire.TransfersReq{}, n.transfer.ServeTransfers),
		wire.TypeLeave:           decoding(wire.LeaveReq{}, n.serveLeave),
		wire.TypeReplace:         decoding(wire.ReplaceReq{}, n.serveReplace),
		wire.TypeJoin:            decoding(wire.JoinReq{}, n.serveJoin),
		wire.TypeBuckets:         decoding(wire.BucketsReq{}, n.serveBuckets),
		wire.TypeBucketSet:       decoding(wire.BucketSetReq{}, n.serveBucketSet),
		wire.TypeCounterIncr:     decoding(wire.CounterIncrReq{Opts: wire.DefaultOptions()}, n.serveCounterIncr),
		wire.TypeCounterGet:      decoding(wire.CounterGetReq{Opts: wire.DefaultOptions()}, n.serveCounterGet),
		wire.TypeSetUpdate:       decoding(wire.SetUpdateReq{Opts: wire.DefaultOptions()}, n.serveSetUpdate),
		wire.TypeSetGet:          decoding(wire.SetGetReq{Opts: wire.DefaultOptions()}, n.serveSetGet),
		wire.TypeUsers:           decoding(wire.UsersReq{}, n.serveUsers),
		wire.TypeReapCheck:       decoding(wire.ReapCheckReq{}, n.serveReapCheck),
		wire.TypeReap:            decoding(wire.ReapReq{}, n.serveReap),
		wire.TypeReapWitness:     decoding(wire.ReapWitnessReq{}, n.serveReapWitness),
	}
}

// decoding serves requests of type Req: the body is decoded over a copy of
// init (which carries the defaults of fields a client may leave out).
func decoding[Req, Resp any](init Req, serve func(context.Context, transport.Peer, Req) (Resp, error)) handler {
	return func(ctx context.Context, peer transport.Peer, body []byte) (any, error) {
		req := init
		if err := wire.Decode(body, &req); err != nil {
			return nil, err
		}
		return serve(ctx, peer, req)
	}
}

// bodiless serves requests that carry nothing (admin reads).
func bodiless[Resp any](serve func() Resp) handler {
	return func(context.Context, transport.Peer, []byte) (any, error) { return serve(), nil }
}

// Handle serves one request frame. It is called by the transport server on
// one of its worker goroutines, concurrently with other requests; ctx ends
// when the connection closes or the node shuts down.
func (n *Node) Handle(ctx context.Context, peer transport.Peer, t wire.Type, body []byte) (wire.Type, any, error) {
	serve, ok := n.dispatch[t]
	if !ok {
		return 0, nil, cairn.InvalidArgument("message type %v is not a request this node serves", t)
	}
	if err := n.admit(peer, t); err != nil {
		return 0, nil, err
	}
	start := n.now()
	resp, err := serve(ctx, peer, body)
	n.metrics.observeRequest(t, err, n.now().Sub(start))
	return t + 1, resp, err
}

// admit is every request's gate, on a worker or inline: one place, so that
// a check added for one path cannot be missing from the other.
func (n *Node) admit(peer transport.Peer, t wire.Type) error {
	if !n.ready.Load() {
		return cairn.ErrUnavailable
	}
	if n.cfg.refusePeer != nil && peer.Node != "" && n.cfg.refusePeer(peer.Node) {
		return cairn.ErrUnavailable // a partition, simulated by a test
	}
	return n.authorize(peer, t)
}

// HandleInline answers on the connection's reader a peer's read of a copy
// that is in the object cache: the replica's part of most gets, a few
// microseconds of work that a hand-off to a worker would double. Anything
// else, and anything it would refuse, goes to Handle, which gives the
// refusal its error.
func (n *Node) HandleInline(peer transport.Peer, t wire.Type, body []byte) (wire.Type, any, bool) {
	if t != wire.TypeReplicaGet || n.admit(peer, t) != nil {
		return 0, nil, false
	}
	start := n.now()
	var req wire.ReplicaGetReq
	if wire.Decode(body, &req) != nil || req.For != "" || req.AllHints || n.checkReplicaRequest(peer, req.Partition, req.Bucket, req.Key) != nil {
		return 0, nil, false
	}
	obj, cached, err := n.replicas.store.GetCached(req.Partition, req.Bucket, req.Key)
	if err != nil || !cached {
		return 0, nil, false
	}
	resp := n.replicas.replicaGetAnswer(req, obj, true)
	n.metrics.observeRequest(t, nil, n.now().Sub(start))
	return t + 1, resp, true
}

// The client requests answer with the node's ring version, so that a
// client routing by its own copy of the ring learns that it is stale.

func (n *Node) serveGet(ctx context.Context, _ transport.Peer, req wire.GetReq) (wire.GetResp, error) {
	resp, err := n.get(ctx, req)
	resp.RingVersion = n.ring().Version()
	return resp, err
}

func (n *Node) servePut(ctx context.Context, _ transport.Peer, req wire.PutReq) (wire.PutResp, error) {
	resp, err := n.put(ctx, req)
	resp.RingVersion = n.ring().Version()
	return resp, err
}

func (n *Node) serveDelete(ctx context.Context, _ transport.Peer, req wire.DeleteReq) (wire.DeleteResp, error) {
	resp, err := n.delete(ctx, req)
	resp.RingVersion = n.ring().Version()
	return resp, err
}

// requestContext gives a request the deadline it asked for, the node's
// default when it asked for none, and never more than the node allows. The
// deadline governs every step of the request, replica calls included.
func (n *Node) requestContext(ctx context.Context, timeoutMs uint32) (context.Context, context.CancelFunc) {
	d := n.cfg.RequestTimeout
	if timeoutMs > 0 {
		d = time.Duration(timeoutMs) * time.Millisecond
	}
	d = min(d, n.cfg.MaxRequestTimeout)
	return context.WithTimeout(ctx, d)
}
