package node

import (
	"context"
	"fmt"

	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
)

// peerCaller calls cluster members by name over the node's peer pool. A
// call that cannot have reached the member (its address is unknown, or the
// connection could not be made) fails with an error that wraps
// coord.ErrNotDelivered as well as the underlying one. It looks the
// member's address and the pool up at each call: the drivers are built
// before membership and the pool exist.
type peerCaller struct {
	n *Node
	// markDown makes a failure that is the peer's fault mark it down for
	// the requests too. The coordinator does that itself (coord.View).
	markDown bool
}

func (c peerCaller) Call(ctx context.Context, node string, t wire.Type, req, resp any) error {
	addr, ok := c.n.members.Addr(node)
	if !ok {
		return fmt.Errorf("%w: no address for %s", coord.ErrNotDelivered, node)
	}
	err := c.n.peers.Call(ctx, addr, t, req, resp)
	if err != nil && transport.IsDialError(err) {
		err = fmt.Errorf("%w: %w", coord.ErrNotDelivered, err)
	}
	if err != nil && c.markDown {
		c.n.markDown(node, err)
	}
	return err
}
