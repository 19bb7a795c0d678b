package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
)

// Member is one node of the ring as the asked node sees it.
type Member struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Gossip  string `json:"gossip"`
	Status  string `json:"status"`
	Version uint64 `json:"version"`
	Alive   bool   `json:"alive"`
	// Seat is the member whose place this one took (cairn replace): it
	// owns the partitions that member did. Empty when it took none.
	Seat string `json:"seat,omitempty"`
}

// Members lists the ring's members and their liveness.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var resp wire.MembersResp
	if err := c.call(ctx, wire.TypeMembers, struct{}{}, &resp); err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, Member(m))
	}
	return out, nil
}

// RingInfo summarises the ring as the asked node computes it.
type RingInfo struct {
	Partitions int            `json:"partitions"`
	N          int            `json:"n"`
	Version    uint64         `json:"version"`
	Members    []string       `json:"members"`
	Owned      map[string]int `json:"owned"`
}

// Ring returns the asked node's ring: Q, N and partitions owned per node.
func (c *Client) Ring(ctx context.Context) (*RingInfo, error) {
	var resp wire.RingResp
	if err := c.call(ctx, wire.TypeRing, struct{}{}, &resp); err != nil {
		return nil, err
	}
	return &RingInfo{Partitions: resp.Partitions, N: resp.N, Version: resp.Version, Members: resp.Members, Owned: resp.Owned}, nil
}

// Status describes the asked node.
type Status struct {
	Node        string        `json:"node"`
	Addr        string        `json:"addr"`
	Cluster     string        `json:"cluster"`
	Uptime      time.Duration `json:"uptime_ns"`
	RingVersion uint64        `json:"ring_version"`
	Partitions  int           `json:"partitions"`
	N           int           `json:"n"`
	Members     int           `json:"members"`
	Alive       int           `json:"alive"`
	DiskBytes   int64         `json:"disk_bytes"`
	// ObjectBytes is the part of DiskBytes the objects' tables take.
	ObjectBytes int64 `json:"object_bytes"`
	// Admin is the node's admin HTTP address as the node bound it, empty
	// when it serves none.
	Admin string `json:"admin,omitempty"`
	// Reaped counts the tombstones the node removed since it started
	// (buckets with a delete grace); ReapPaused says why reaping is
	// paused, empty when it is not.
	Reaped     uint64 `json:"reaped"`
	ReapPaused string `json:"reap_paused,omitempty"`
}

// Status returns the asked node's view of itself and the cluster.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var r wire.StatusResp
	if err := c.call(ctx, wire.TypeStatus, struct{}{}, &r); err != nil {
		return nil, err
	}
	return &Status{Node: r.Node, Addr: r.Addr, Cluster: r.Cluster, Uptime: time.Duration(r.UptimeMs) * time.Millisecond,
		RingVersion: r.RingVersion, Partitions: r.Partitions, N: r.N, Members: r.Members, Alive: r.Alive, DiskBytes: r.DiskBytes, ObjectBytes: r.ObjectBytes, Admin: r.Admin,
		Reaped: r.Reaped, ReapPaused: r.ReapPaused}, nil
}

// ReplicaSibling is one sibling of one replica's copy, with its dot.
type ReplicaSibling struct {
	Actor     string `json:"actor"`
	Counter   uint64 `json:"counter"`
	Value     []byte `json:"value"`
	Tombstone bool   `json:"tombstone"`
	WrittenAt int64  `json:"written_at"`
}

// ReplicaCopy is one node's own, unmerged copy of a key.
type ReplicaCopy struct {
	Node     string            `json:"node"`
	Primary  bool              `json:"primary"`
	Found    bool              `json:"found"`
	Error    string            `json:"error,omitempty"`
	Siblings []ReplicaSibling  `json:"siblings"`
	Context  map[string]uint64 `json:"context"`
}

// DebugReplicas asks every replica of a key for its own copy, without
// merging or repairing, to show divergence.
func (c *Client) DebugReplicas(ctx context.Context, bucket string, key []byte) (partition uint32, copies []ReplicaCopy, err error) {
	var resp wire.DebugReplicasResp
	if err := c.call(ctx, wire.TypeDebugReplicas, wire.DebugReplicasReq{Bucket: bucket, Key: key}, &resp); err != nil {
		return 0, nil, err
	}
	for _, r := range resp.Replicas {
		rc := ReplicaCopy{Node: r.Node, Primary: r.Primary, Found: r.Found, Error: r.Err, Siblings: []ReplicaSibling{}, Context: map[string]uint64(r.Object.VV)}
		if rc.Context == nil {
			rc.Context = map[string]uint64{}
		}
		for _, s := range r.Object.Siblings {
			rc.Siblings = append(rc.Siblings, siblingOf(s))
		}
		copies = append(copies, rc)
	}
	return resp.Partition, copies, nil
}

func siblingOf(s dvv.Sibling) ReplicaSibling {
	return ReplicaSibling{Actor: s.Dot.Actor, Counter: s.Dot.Counter, Value: s.Value, Tombstone: s.Tombstone, WrittenAt: s.WrittenAt}
}

// RemoveMember takes a member out of the ring for good, through whichever
// node answers: its partitions move to the other members, and the name
// never owns partitions again (a node returning to service needs a new
// name). A member the answering node sees alive is refused unless force is
// set, because its replicas would drop out of the ring without being
// handed off. It returns the ring version after the removal, by which the
// client routes once it returns.
func (c *Client) RemoveMember(ctx context.Context, name string, force bool) (uint64, error) {
	if name == "" {
		return 0, cairn.InvalidArgument("remove: a member name is required")
	}
	var resp wire.RemoveMemberResp
	addr, err := c.callAt(ctx, wire.TypeRemoveMember, wire.RemoveMemberReq{Name: name, Force: force}, &resp)
	if err != nil {
		return 0, err
	}
	// The node that removed it is the one that certainly knows: ask it
	// now, so the client routes by the new ring when this returns.
	c.refreshRing(addr)
	return resp.RingVersion, nil
}

// KeyringNode is one node's gossip keyring (base64 keys, the one in use
// first) after a keyring operation, or why the operation failed there.
type KeyringNode struct {
	Node    string   `json:"node"`
	Primary string   `json:"primary,omitempty"`
	Keys    []string `json:"keys,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Keyring lists or changes the gossip encryption keys of every member,
// through whichever node answers: op is "list", "install", "use" or
// "remove", key a base64 key (unused by list). Rotating a live cluster's
// key is install everywhere, use everywhere, remove the old one
// everywhere; each step can be repeated. It returns every member's
// keyring; an error names the members the operation failed on.
func (c *Client) Keyring(ctx context.Context, op, key string) ([]KeyringNode, error) {
	switch op {
	case "list", "install", "use", "remove":
	default:
		return nil, cairn.InvalidArgument("keyring: unknown operation %q (list, install, use or remove)", op)
	}
	var resp wire.KeyringResp
	if _, err := c.callAt(ctx, wire.TypeKeyring, wire.KeyringReq{Op: op, Key: key}, &resp); err != nil {
		return nil, err
	}
	nodes := make([]KeyringNode, len(resp.Nodes))
	var failed []string
	for i, n := range resp.Nodes {
		nodes[i] = KeyringNode(n)
		if n.Error != "" {
			failed = append(failed, n.Node+": "+n.Error)
		}
	}
	if len(failed) > 0 {
		return nodes, fmt.Errorf("keyring %s failed on %d of %d members (repeat it once they are back): %s",
			op, len(failed), len(nodes), strings.Join(failed, "; "))
	}
	return nodes, nil
}
