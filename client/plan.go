package client

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
)

// Change is a membership change to plan: Op is join (Node joins), leave
// (Node, alive, hands its partitions over), remove (Node leaves the ring
// at once; its partitions are rebuilt from their other replicas) or
// replace (New takes Node's place).
type Change struct {
	Op   string `json:"op"`
	Node string `json:"node"`
	New  string `json:"new,omitempty"`
}

func (ch Change) String() string {
	if ch.Op == "replace" {
		return fmt.Sprintf("replace %s %s", ch.Node, ch.New)
	}
	return ch.Op + " " + ch.Node
}

// Move is one partition copy a change streams.
type Move struct {
	Partition uint32 `json:"partition"`
	// From is the partition's first current owner that is alive, which
	// streams it; empty when none is.
	From string `json:"from"`
	To   string `json:"to"`
	// Keys is the most keys any replica's anti-entropy tree counts in the
	// partition (-1 when no replica reported one).
	Keys int64 `json:"keys"`
}

// Plan is what a change would move, computed from the asked node's ring
// state with the ring's own rule, so it is what the nodes will do if
// nothing else changes first.
type Plan struct {
	Change     Change   `json:"change"`
	Partitions int      `json:"partitions"`
	N          int      `json:"n"`
	Before     []string `json:"members_before"`
	After      []string `json:"members_after"`
	// Owned counts each member's partitions before and after.
	OwnedBefore map[string]int `json:"owned_before"`
	OwnedAfter  map[string]int `json:"owned_after"`
	// Moving is how many partitions gain an owner; Moves lists every
	// copy to stream.
	Moving int    `json:"moving"`
	Moves  []Move `json:"moves"`
	// Keys sums the moves' keys; Bytes estimates their size from the
	// nodes' disk use per key (0 when unknown).
	Keys  int64 `json:"keys"`
	Bytes int64 `json:"bytes_estimate"`
	// InFlight names the change already in flight, which runs first; the
	// plan is computed from the ring in effect.
	InFlight string `json:"in_flight,omitempty"`
	// Unreachable lists live members whose key counts could not be read.
	Unreachable []string `json:"unreachable,omitempty"`
}

// Plan computes what ch would move, asking the connected node for the ring
// state and every live member for its key counts. It changes nothing.
func (c *Client) Plan(ctx context.Context, ch Change) (*Plan, error) {
	var state wire.RingStateResp
	if err := c.call(ctx, wire.TypeRingState, struct{}{}, &state); err != nil {
		return nil, err
	}
	p, err := PlanChange(state.Members, state.Partitions, state.N, ch)
	if err != nil {
		return nil, err
	}
	keys := map[uint32]int64{}
	var disk, counted int64
	for _, m := range state.Members {
		if !m.Alive || m.Addr == "" || (m.Status != "active" && m.Status != "leaving") {
			continue
		}
		k, d, err := c.nodeKeys(ctx, m.Addr)
		if err != nil {
			p.Unreachable = append(p.Unreachable, m.Name)
			continue
		}
		var total int64
		for part, n := range k {
			keys[part] = max(keys[part], n)
			total += n
		}
		if total > 0 {
			disk, counted = disk+d, counted+total
		}
	}
	for i := range p.Moves {
		n, ok := keys[p.Moves[i].Partition]
		if !ok && len(p.Unreachable) > 0 {
			p.Moves[i].Keys = -1
			continue
		}
		p.Moves[i].Keys = n
		p.Keys += n
	}
	if counted > 0 {
		p.Bytes = p.Keys * disk / counted
	}
	return p, nil
}

// nodeKeys returns one node's key count per partition, from its
// anti-entropy trees, and its disk use.
func (c *Client) nodeKeys(ctx context.Context, addr string) (map[uint32]int64, int64, error) {
	var st wire.StatusResp
	if err := c.pool.Call(ctx, addr, wire.TypeStatus, struct{}{}, &st); err != nil {
		return nil, 0, err
	}
	keys := map[uint32]int64{}
	req := wire.AAEStatusReq{Trees: true}
	for {
		var r wire.AAEStatusResp
		if err := c.pool.Call(ctx, addr, wire.TypeAAEStatus, req, &r); err != nil {
			return nil, 0, err
		}
		for _, t := range r.TreeList {
			keys[t.Partition] = t.Keys
		}
		if !r.TreesMore || r.TreesNext <= req.TreesFrom {
			return keys, st.DiskBytes, nil
		}
		req.TreesFrom = r.TreesNext
	}
}

// PlanChange computes the moves of ch over members (a RingState answer's)
// for q partitions and replication factor n, without key counts. It
// refuses a change the nodes would refuse, with the same reasons.
func PlanChange(members []wire.MemberInfo, q, n int, ch Change) (*Plan, error) {
	byName := map[string]wire.MemberInfo{}
	seats := map[string]string{}
	var owners []string
	var inFlight []string
	for _, m := range members {
		byName[m.Name] = m
		switch m.Status {
		case "active", "leaving":
			owners = append(owners, m.Name)
			if m.Seat != "" {
				seats[m.Name] = m.Seat
			}
		}
		if m.Status == "joining" || m.Status == "leaving" {
			inFlight = append(inFlight, m.Name+" "+m.Status)
		}
	}
	owners = slices.DeleteFunc(owners, func(name string) bool {
		for _, s := range seats {
			if s == name {
				return true
			}
		}
		return false
	})
	slices.Sort(owners)
	next := slices.Clone(owners)
	nextSeats := maps.Clone(seats)
	target, known := byName[ch.Node]
	switch ch.Op {
	case "join":
		if known && target.Status != "joining" {
			return nil, cairn.InvalidArgument("plan join %s: it is already a member (%s)", ch.Node, target.Status)
		}
		next = append(next, ch.Node)
	case "leave", "remove":
		if !known || !slices.Contains(owners, ch.Node) {
			return nil, cairn.InvalidArgument("plan %s %s: it owns no partitions (%s)", ch.Op, ch.Node, cmp.Or(target.Status, "not a member"))
		}
		if len(owners) < 2 {
			return nil, cairn.InvalidArgument("plan %s %s: it is the last member; nothing could take its partitions", ch.Op, ch.Node)
		}
		next = slices.DeleteFunc(next, func(s string) bool { return s == ch.Node })
	case "replace":
		newcomer, newKnown := byName[ch.New]
		switch {
		case ch.New == "" || ch.New == ch.Node:
			return nil, cairn.InvalidArgument("plan replace %s: name the node taking its place, other than itself", ch.Node)
		case !known || target.Status != "active" || !slices.Contains(owners, ch.Node):
			return nil, cairn.InvalidArgument("plan replace %s %s: %s is %s; only an active member can be replaced", ch.Node, ch.New, ch.Node, cmp.Or(target.Status, "not a member"))
		case newKnown && newcomer.Status != "joining":
			return nil, cairn.InvalidArgument("plan replace %s %s: %s is %s; only a node that is not active yet can take a member's place", ch.Node, ch.New, ch.New, newcomer.Status)
		}
		next = slices.DeleteFunc(next, func(s string) bool { return s == ch.Node })
		next = append(next, ch.New)
		delete(nextSeats, ch.Node)
		nextSeats[ch.New] = cmp.Or(seats[ch.Node], ch.Node)
	default:
		return nil, cairn.InvalidArgument("plan: unknown change %q: want join, leave, remove or replace", ch.Op)
	}
	cur, err := ring.NewSeated(q, owners, seats)
	if err != nil {
		return nil, fmt.Errorf("plan: the ring in effect: %w", err)
	}
	after, err := ring.NewSeated(q, next, nextSeats)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", ch, err)
	}
	n = max(n, 1)
	pl := ring.NewPlacement(cur, after, n, func(string, uint32) bool { return false })
	p := &Plan{Change: ch, Partitions: q, N: n, Before: cur.Members(), After: after.Members(),
		OwnedBefore: map[string]int{}, OwnedAfter: map[string]int{}, Moves: []Move{}}
	slices.Sort(inFlight)
	if len(inFlight) > 0 {
		p.InFlight = fmt.Sprint(inFlight)
	}
	for _, m := range p.Before {
		p.OwnedBefore[m] = len(cur.Owned(m))
	}
	for _, m := range p.After {
		p.OwnedAfter[m] = len(after.Owned(m))
	}
	for part := range uint32(q) {
		targets := pl.Targets(part)
		if len(targets) == 0 {
			continue
		}
		p.Moving++
		from := ""
		for _, s := range pl.Sources(part) {
			if byName[s].Alive {
				from = s
				break
			}
		}
		for _, t := range targets {
			p.Moves = append(p.Moves, Move{Partition: part, From: from, To: t})
		}
	}
	return p, nil
}
