package handoff

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// ServeHandoff applies a batch of hints kept for this node, at the pace
// this node sets: a batch the receive bucket cannot admit now is refused
// whole with the time to wait, and an admitted one comes back with an
// invitation for the next batch's size (what the bucket holds, at least a
// quarter of a first batch). Every item is checked before any is written,
// its object against the dot rules too (dvv.Object.Validate): one bad
// object refuses the batch.
func (h *Handoff) ServeHandoff(ctx context.Context, peer transport.Peer, req wire.HandoffReq) (wire.HandoffResp, error) {
	if peer.Node == "" {
		return wire.HandoffResp{}, cairn.InvalidArgument("handoff is for peers: the handshake named no node")
	}
	bytes := int64(0)
	for _, it := range req.Items {
		if err := h.d.CheckKey(it.Partition, it.Bucket, it.Key); err != nil {
			return wire.HandoffResp{}, err
		}
		if err := it.Object.Validate(); err != nil {
			return wire.HandoffResp{}, fmt.Errorf("%w: handoff of %s/%q: object breaks the dot rules: %w", cairn.ErrProtocol, it.Bucket, it.Key, err)
		}
		bytes += int64(len(it.Bucket) + len(it.Key))
		for _, s := range it.Object.Siblings {
			bytes += int64(len(s.Value))
		}
	}
	ok, wait, credit := h.admit(bytes)
	if !ok {
		h.m.throttled.Inc()
		return wire.HandoffResp{RetryAfterMs: uint32(min(time.Duration(wait), time.Minute) / time.Millisecond), CreditBytes: credit}, nil
	}
	for _, it := range req.Items {
		if err := ctx.Err(); err != nil {
			return wire.HandoffResp{}, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
		}
		if err := h.syncInto(it.Partition, it.Bucket, it.Key, it.Object); err != nil {
			return wire.HandoffResp{}, err
		}
	}
	// One fsync for the batch, before the acknowledgement that lets the
	// sender forget it.
	if err := h.d.Store.SyncWAL(); err != nil {
		return wire.HandoffResp{}, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
	}
	h.m.received.Add(float64(len(req.Items)))
	h.m.receivedBytes.Add(float64(bytes))
	return wire.HandoffResp{Accepted: true, Applied: len(req.Items), CreditBytes: credit}, nil
}

// admit takes bytes from the receive bucket if it can, and returns the
// credit to offer the sender for its next batch.
func (h *Handoff) admit(bytes int64) (ok bool, wait, credit int64) {
	now := h.d.Now().UnixNano()
	h.receiveMu.Lock()
	defer h.receiveMu.Unlock()
	ok, wait = h.receive.Admit(now, bytes)
	return ok, wait, max(h.cfg.minCredit(), int64(h.receive.Tokens(now)))
}

// ServeHints reports the hints this node keeps, owner by owner.
func (h *Handoff) ServeHints(_ context.Context, _ transport.Peer, _ wire.HintsReq) (wire.HintsResp, error) {
	resp := wire.HintsResp{Node: h.d.Name, Stored: h.stored.Load(), Started: h.started}
	now := h.d.Now().UnixNano()
	for owner, st := range h.d.Store.HintStats() {
		o := wire.HintOwner{Owner: owner, Pending: st.Pending, Delivered: st.Delivered, Bytes: st.Bytes,
			Delivering: h.isActive(owner), Failures: h.failuresOf(owner)}
		if st.BacklogSince > 0 {
			o.BacklogMs = (now - st.BacklogSince) / 1e6
		}
		resp.Owners = append(resp.Owners, o)
	}
	return resp, nil
}
