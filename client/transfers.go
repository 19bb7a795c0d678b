package client

import (
	"context"
	"time"

	"github.com/cairnkv/cairn"

	"github.com/cairnkv/cairn/internal/wire"
)

// Transfer is one partition's stream from a current owner to a node that
// is to own it next, during a membership change.
type Transfer struct {
	Partition uint32 `json:"partition"`
	From      string `json:"from"`
	To        string `json:"to"`
	// State is waiting (the target is down), streaming, done or failed
	// (it resumes from its cursor after a short wait).
	State      string `json:"state"`
	Keys       int64  `json:"keys"`
	Bytes      int64  `json:"bytes"`
	TotalKeys  int64  `json:"total_keys"`
	TotalBytes int64  `json:"total_bytes"`
	// Rates are over the stream's current run.
	KeysPerSec  float64 `json:"keys_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	// ETA is the time left at the current rate; -1 when unknown.
	ETA   time.Duration `json:"eta_ns"`
	Error string        `json:"error,omitempty"`
}

// Transfers is a membership change as the asked node sees it.
type Transfers struct {
	// Changing is false when no change is in flight.
	Changing bool `json:"changing"`
	// Members is the ring in effect (reads are answered from it), Next the
	// one being moved to.
	Members []string `json:"members"`
	Next    []string `json:"next"`
	// Flipped of Moving partitions have moved their reads to Next.
	Flipped   int        `json:"flipped"`
	Moving    int        `json:"moving"`
	Transfers []Transfer `json:"transfers"`
	// Unreachable lists live members that did not say what they send.
	Unreachable []string `json:"unreachable"`
}

// Transfers returns the change in flight and every live member's streams.
func (c *Client) Transfers(ctx context.Context) (Transfers, error) {
	var resp wire.TransfersResp
	if err := c.call(ctx, wire.TypeTransfers, wire.TransfersReq{}, &resp); err != nil {
		return Transfers{}, err
	}
	out := Transfers{Changing: resp.Changing, Members: orEmpty(resp.Members), Next: orEmpty(resp.Next),
		Flipped: resp.Flipped, Moving: resp.Moving, Transfers: []Transfer{}, Unreachable: orEmpty(resp.Unreachable)}
	for _, t := range resp.Transfers {
		eta := time.Duration(-1)
		if t.EtaMs >= 0 {
			eta = time.Duration(t.EtaMs) * time.Millisecond
		}
		out.Transfers = append(out.Transfers, Transfer{Partition: t.Partition, From: t.From, To: t.To, State: t.State,
			Keys: t.Keys, Bytes: t.Bytes, TotalKeys: t.TotalKeys, TotalBytes: t.TotalBytes,
			KeysPerSec: t.KeysPerSec, BytesPerSec: t.BytesPerSec, ETA: eta, Error: t.Error})
	}
	return out, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Leave asks member name (alive) to leave the ring: its partitions are
// streamed to the members that will own them, reads move partition by
// partition, and once none is left the member is removed and its process
// exits. It returns once the member is leaving; Transfers shows progress.
func (c *Client) Leave(ctx context.Context, name string) error {
	if name == "" {
		return cairn.InvalidArgument("leave: a member name is required")
	}
	return c.call(ctx, wire.TypeLeave, wire.LeaveReq{Name: name}, &wire.LeaveResp{})
}

// Replace makes member newName take member old's place in one change:
// old's partitions are streamed to newName (from old if it is up, else
// from their other replicas), and once every one flipped old owns nothing
// and is removed for good. newName must be running, have joined (started
// with --join and without --bootstrap) and not be active yet; old may be
// dead. It returns once the change is under way; Transfers shows progress.
func (c *Client) Replace(ctx context.Context, old, newName string) error {
	if old == "" || newName == "" {
		return cairn.InvalidArgument("replace: the member to replace and the one taking its place are required")
	}
	return c.call(ctx, wire.TypeReplace, wire.ReplaceReq{Old: old, New: newName}, &wire.ReplaceResp{})
}

// Join makes the asked node, started alone (without --join) and holding no
// data, join the cluster that seeds (members' gossip addresses) belong to.
// It joins as a new node does: each partition it is to own is streamed to
// it before it owns it. It returns once the node is joining; Transfers
// shows progress.
func (c *Client) Join(ctx context.Context, seeds ...string) error {
	if len(seeds) == 0 {
		return cairn.InvalidArgument("join: a seed (a member's gossip address) is required")
	}
	return c.call(ctx, wire.TypeJoin, wire.JoinReq{Seeds: seeds}, &wire.JoinResp{})
}
