package node

import (
	"context"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// Handle serves one request frame. It is called by the transport server on
// one of its worker goroutines, concurrently with other requests; ctx ends
// when the connection closes or the node shuts down.
func (n *Node) Handle(ctx context.Context, peer transport.Peer, t wire.Type, body []byte) (wire.Type, any, error) {
	if !n.ready.Load() {
		return 0, nil, cairn.ErrUnavailable
	}
	if n.cfg.refusePeer != nil && peer.Node != "" && n.cfg.refusePeer(peer.Node) {
		return 0, nil, cairn.ErrUnavailable // a partition, simulated by a test
	}
	start := n.now()
	respType, resp, err := n.dispatch(ctx, peer, t, body)
	n.metrics.observeRequest(t, err, n.now().Sub(start))
	return respType, resp, err
}

func (n *Node) dispatch(ctx context.Context, peer transport.Peer, t wire.Type, body []byte) (wire.Type, any, error) {
	switch t {
	case wire.TypeGet:
		req := wire.GetReq{Opts: wire.DefaultOptions()}
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.get(ctx, req)
		resp.RingVersion = n.ring().Version()
		return wire.TypeGetResp, resp, err
	case wire.TypePut:
		req := wire.PutReq{Opts: wire.DefaultOptions()}
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.put(ctx, req)
		resp.RingVersion = n.ring().Version()
		return wire.TypePutResp, resp, err
	case wire.TypeDelete:
		req := wire.DeleteReq{Opts: wire.DefaultOptions()}
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.delete(ctx, req)
		resp.RingVersion = n.ring().Version()
		return wire.TypeDeleteResp, resp, err
	case wire.TypeReplicaGet:
		var req wire.ReplicaGetReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveReplicaGet(ctx, peer, req)
		return wire.TypeReplicaGetResp, resp, err
	case wire.TypeReplicaPut:
		var req wire.ReplicaPutReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveReplicaPut(ctx, peer, req)
		return wire.TypeReplicaPutResp, resp, err
	case wire.TypeHandoff:
		var req wire.HandoffReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveHandoff(ctx, peer, req)
		return wire.TypeHandoffResp, resp, err
	case wire.TypeHints:
		return wire.TypeHintsResp, n.serveHints(), nil
	case wire.TypeMembers:
		return wire.TypeMembersResp, n.serveMembers(), nil
	case wire.TypeRing:
		return wire.TypeRingResp, n.serveRing(), nil
	case wire.TypeStatus:
		return wire.TypeStatusResp, n.serveStatus(), nil
	case wire.TypeDebugReplicas:
		var req wire.DebugReplicasReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveDebugReplicas(ctx, req)
		return wire.TypeDebugReplicasResp, resp, err
	case wire.TypeRingState:
		return wire.TypeRingStateResp, n.serveRingState(), nil
	case wire.TypeRemoveMember:
		var req wire.RemoveMemberReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveRemoveMember(req)
		return wire.TypeRemoveMemberResp, resp, err
	case wire.TypeAAEQuery:
		var req wire.AAEQueryReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveAAEQuery(peer, req, len(body))
		return wire.TypeAAEAnswer, resp, err
	case wire.TypeAAEFetch:
		var req wire.AAEFetchReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveAAEFetch(ctx, peer, req, len(body))
		return wire.TypeAAEFetchResp, resp, err
	case wire.TypeAAEPush:
		var req wire.AAEPushReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp, err := n.serveAAEPush(ctx, peer, req, len(body))
		return wire.TypeAAEPushResp, resp, err
	case wire.TypeAAEStatus:
		var req wire.AAEStatusReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		return wire.TypeAAEStatusResp, n.serveAAEStatus(req), nil
	}
	return 0, nil, cairn.InvalidArgument("message type %v is not a request this node serves", t)
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
