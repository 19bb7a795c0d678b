package client

import (
	"context"
	"time"

	"github.com/cairnkv/cairn/internal/wire"
)

// HintQueue is what one node keeps for one owner it stood in for.
type HintQueue struct {
	Owner string `json:"owner"`
	// Pending hints wait for the owner's acknowledgement; Delivered ones
	// were acknowledged and are deleted once their partition has nothing
	// pending.
	Pending   int   `json:"pending"`
	Delivered int   `json:"delivered"`
	Bytes     int64 `json:"bytes"`
	// Backlog is how long the owner has had hints pending (an upper bound
	// on the oldest one's age).
	Backlog    time.Duration `json:"backlog_ns"`
	Delivering bool          `json:"delivering"`
	// Failures counts failed delivery rounds in a row.
	Failures int `json:"failures"`
}

// Hints returns the hints the asked node keeps, per owner. An empty list
// means the node holds nothing for anyone.
func (c *Client) Hints(ctx context.Context) (node string, queues []HintQueue, err error) {
	var resp wire.HintsResp
	if err := c.call(ctx, wire.TypeHints, struct{}{}, &resp); err != nil {
		return "", nil, err
	}
	queues = []HintQueue{}
	for _, o := range resp.Owners {
		queues = append(queues, HintQueue{Owner: o.Owner, Pending: o.Pending, Delivered: o.Delivered, Bytes: o.Bytes,
			Backlog: time.Duration(o.BacklogMs) * time.Millisecond, Delivering: o.Delivering, Failures: o.Failures})
	}
	return resp.Node, queues, nil
}
