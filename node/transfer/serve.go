package transfer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"go.uber.org/zap"
)

// checkTarget refuses a push or done from a non-peer, or for a change or
// partition this node is not a target of (the sender's view is ahead or
// behind; it tries again later).
func (t *Transfer) checkTarget(peer transport.Peer, p uint32, next uint64) error {
	if peer.Node == "" {
		return cairn.InvalidArgument("transfer messages are for peers: the handshake named no node")
	}
	pl := t.d.Members.Placement()
	if pl == nil || int64(p) >= int64(pl.Cur().Partitions()) {
		return cairn.InvalidArgument("transfer of partition %d: out of range", p)
	}
	if pl.Next().Version() != next || !pl.Changing() {
		return cairn.InvalidArgument("transfer for ring %016x: this node is moving to ring %016x", next, pl.Next().Version())
	}
	if !slices.Contains(pl.Targets(p), t.d.Name) {
		return cairn.InvalidArgument("transfer of partition %d: this node is not one of its next owners", p)
	}
	return nil
}

// ServePush syncs a batch of a partition this node is to own, durably
// before the answer. Every object is checked first: one with a bad key or
// one that breaks the dot rules refuses the batch, and nothing is written.
func (t *Transfer) ServePush(ctx context.Context, peer transport.Peer, req wire.TransferPushReq) (wire.TransferPushResp, error) {
	if err := t.checkTarget(peer, req.Partition, req.Next); err != nil {
		return wire.TransferPushResp{}, err
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxBatchKeys {
		return wire.TransferPushResp{}, cairn.InvalidArgument("transfer push of %d objects: must be 1 to %d", len(req.Objects), maxBatchKeys)
	}
	for _, o := range req.Objects {
		if err := t.d.CheckKey(req.Partition, o.Bucket, o.Key); err != nil {
			return wire.TransferPushResp{}, err
		}
		if err := o.Object.Validate(); err != nil {
			return wire.TransferPushResp{}, fmt.Errorf("%w: transferred object of %s/%q breaks the dot rules: %w", cairn.ErrProtocol, o.Bucket, o.Key, err)
		}
	}
	var resp wire.TransferPushResp
	for _, o := range req.Objects {
		if err := ctx.Err(); err != nil {
			return wire.TransferPushResp{}, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
		}
		mode := t.d.Mode(o.Bucket)
		_, err := t.d.Store.ModifyUnsynced(req.Partition, o.Bucket, o.Key, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
			if found && mode.Descends(cur, o.Object) {
				return cur, false, nil
			}
			resp.Applied++
			return mode.Sync(cur, o.Object), true, nil
		})
		if err != nil {
			return wire.TransferPushResp{}, fmt.Errorf("%w: transfer write: %w", cairn.ErrInternal, err)
		}
	}
	if resp.Applied > 0 {
		if err := t.d.Store.SyncWAL(); err != nil {
			return wire.TransferPushResp{}, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
		}
	}
	t.m.received.Add(float64(len(req.Objects)))
	return resp, nil
}

// ServeDone records that this node holds a partition for the change: the
// mark goes into its ring state entry and is gossiped, and the partition
// flips once every target of it holds it.
func (t *Transfer) ServeDone(_ context.Context, peer transport.Peer, req wire.TransferDoneReq) (wire.TransferDoneResp, error) {
	if err := t.checkTarget(peer, req.Partition, req.Next); err != nil {
		return wire.TransferDoneResp{}, err
	}
	t.d.Members.MarkHave(req.Next, req.Partition)
	t.log.Info("transfer received", zap.Uint32("partition", req.Partition), zap.String("from", peer.Node),
		zap.Int64("keys", req.Keys), zap.Int64("bytes", req.Bytes))
	return wire.TransferDoneResp{}, nil
}

// askTimeout bounds the question to each peer in ServeTransfers.
const askTimeout = 2 * time.Second

// ServeTransfers describes the change in flight: this node's streams, and
// unless req.Local every live member's.
func (t *Transfer) ServeTransfers(ctx context.Context, _ transport.Peer, req wire.TransfersReq) (wire.TransfersResp, error) {
	pl := t.d.Members.Placement()
	resp := wire.TransfersResp{Transfers: t.Local(), Unreachable: []string{}}
	if pl != nil {
		resp.Changing = pl.Changing()
		resp.Members, resp.Next = pl.Cur().Members(), pl.Next().Members()
		resp.Flipped, resp.Moving = pl.Flips()
	}
	if req.Local || pl == nil {
		return resp, nil
	}
	var peers []string
	for _, m := range pl.Next().Members() {
		if m != t.d.Name && t.d.Members.Up(m) {
			peers = append(peers, m)
		}
	}
	answers := make([]wire.TransfersResp, len(peers))
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, m := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			errs[i] = t.d.Peers.Call(actx, m, wire.TypeTransfers, wire.TransfersReq{Local: true}, &answers[i])
		}()
	}
	wg.Wait()
	for i, m := range peers {
		if errs[i] != nil {
			resp.Unreachable = append(resp.Unreachable, m)
			continue
		}
		resp.Transfers = append(resp.Transfers, answers[i].Transfers...)
	}
	slices.SortFunc(resp.Transfers, func(a, b wire.TransferInfo) int {
		if a.Partition != b.Partition {
			return int(a.Partition) - int(b.Partition)
		}
		return compareStrings(a.From+"\x00"+a.To, b.From+"\x00"+b.To)
	})
	return resp, nil
}
