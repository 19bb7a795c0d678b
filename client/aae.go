package client

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnkv/cairn/internal/wire"
)

// AAEStatus is one node's anti-entropy: how well the partitions it
// replicates are covered by exchanges, and what they repaired.
type AAEStatus struct {
	Node    string `json:"node"`
	Enabled bool   `json:"enabled"`
	// Partitions the node replicates; InSync of them had their last
	// exchange find nothing to repair; NeverExchanged had none yet.
	Partitions     int `json:"partitions"`
	InSync         int `json:"in_sync"`
	NeverExchanged int `json:"never_exchanged"`
	// Trees the node holds (one per partition it has data for), NotReady
	// of them still being rebuilt from storage.
	Trees    int `json:"trees"`
	NotReady int `json:"not_ready"`
	// OldestExchange is the age of the least recently exchanged replicated
	// partition; -1 when one was never exchanged (or none is replicated).
	OldestExchange time.Duration `json:"oldest_exchange_ns"`
	Running        int           `json:"running"`
	// Exchanges completed and failed since the node started, as initiator.
	Exchanges uint64 `json:"exchanges"`
	Failures  uint64 `json:"failures"`
	// Keys repaired each way: fetched into this node, pushed to peers.
	KeysFetched uint64 `json:"keys_fetched"`
	KeysPushed  uint64 `json:"keys_pushed"`
	// Bytes of anti-entropy messages, as initiator and responder.
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	Rebuilds      uint64 `json:"rebuilds"`
	// Trees lists every tree when asked for (AAEStatus's trees argument).
	TreeList []AAETree `json:"tree_list,omitempty"`
}

// AAETree is one partition's Merkle tree on a node. Two replicas of a
// partition hold the same keys at the same versions exactly when their
// roots are equal (up to a 2^-64 chance).
type AAETree struct {
	Partition uint32 `json:"partition"`
	// Root is the tree's root hash, 16 hex digits.
	Root string `json:"root"`
	Keys int64  `json:"keys"`
	// Ready is false while the tree is being rebuilt.
	Ready bool `json:"ready"`
	// Replicated: the node is one of the partition's primaries now.
	Replicated bool `json:"replicated"`
	// LastExchange is the age of the partition's last completed exchange,
	// -1 if none; InSync says it found nothing to repair.
	LastExchange time.Duration `json:"last_exchange_ns"`
	InSync       bool          `json:"in_sync"`
}

// AAEStatus returns the asked node's anti-entropy status, and with trees
// every tree it holds.
func (c *Client) AAEStatus(ctx context.Context, trees bool) (*AAEStatus, error) {
	var out *AAEStatus
	req := wire.AAEStatusReq{Trees: trees}
	for {
		var r wire.AAEStatusResp
		if err := c.call(ctx, wire.TypeAAEStatus, req, &r); err != nil {
			return nil, err
		}
		if out != nil && r.Node != out.Node {
			return nil, fmt.Errorf("aae status: pages came from %s and %s", out.Node, r.Node)
		}
		if out == nil {
			out = &AAEStatus{Node: r.Node, Enabled: r.Enabled, Partitions: r.Partitions, InSync: r.InSync,
				NeverExchanged: r.NeverExchanged, Trees: r.Trees, NotReady: r.NotReady, OldestExchange: ms(r.OldestExchangeMs),
				Running: r.Running, Exchanges: r.Exchanges, Failures: r.Failures, KeysFetched: r.KeysFetched, KeysPushed: r.KeysPushed,
				BytesSent: r.BytesSent, BytesReceived: r.BytesReceived, Rebuilds: r.Rebuilds}
			if trees {
				out.TreeList = []AAETree{}
			}
		}
		for _, t := range r.TreeList {
			out.TreeList = append(out.TreeList, AAETree{Partition: t.Partition, Root: fmt.Sprintf("%016x", t.Root), Keys: t.Keys,
				Ready: t.Ready, Replicated: t.Replicated, LastExchange: ms(t.LastExchangeMs), InSync: t.InSync})
		}
		if !trees || !r.TreesMore || r.TreesNext <= req.TreesFrom {
			return out, nil
		}
		req.TreesFrom = r.TreesNext
	}
}

// ms turns milliseconds into a duration, keeping -1 (never) as -1.
func ms(v int64) time.Duration {
	if v < 0 {
		return -1
	}
	return time.Duration(v) * time.Millisecond
}
