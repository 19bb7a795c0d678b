package node

import (
	"context"
	"fmt"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
)

// peerCaller calls cluster members by name over the node's peer pool. A
// call that cannot have reached the member (its address is unknown, or the
// connection could not be made) fails with an error that wraps
// coord.ErrNotDelivered as well as the underlying one.
type peerCaller struct {
	members *membership.Membership
	pool    *transport.Pool
}

func (p peerCaller) Call(ctx context.Context, node string, t wire.Type, req, resp any) error {
	addr, ok := p.members.Addr(node)
	if !ok {
		return fmt.Errorf("%w: no address for %s", coord.ErrNotDelivered, node)
	}
	err := p.pool.Call(ctx, addr, t, req, resp)
	if err != nil && transport.IsDialError(err) {
		return fmt.Errorf("%w: %w", coord.ErrNotDelivered, err)
	}
	return err
}
