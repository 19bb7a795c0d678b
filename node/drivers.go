package node

import (
	"fmt"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/aae"
	"github.com/cairnkv/cairn/node/handoff"
	"github.com/cairnkv/cairn/node/transfer"
	"github.com/cairnkv/cairn/ring"
)

// The background drivers (hinted handoff, anti-entropy) live in packages
// of their own and see the node only through the few things below: a
// caller of peers by name, a membership view, and a key check.

// membersView is the membership the drivers see.
type membersView struct{ n *Node }

// Up is a member with an address that is alive and has not refused a
// connection lately.
func (v membersView) Up(node string) bool {
	_, member := v.n.members.Addr(node)
	return member && v.n.up(node)
}

func (v membersView) Alive(node string) bool { return v.n.members.Alive(node) }

// Removed is a member an operator took out of the ring: final, unlike a
// member that is down.
func (v membersView) Removed(node string) bool {
	for _, m := range v.n.members.Members() {
		if m.Name == node {
			return m.Status == membership.StatusRemoved
		}
	}
	return false
}

func (v membersView) Ring() *ring.Ring { return v.n.ring() }

func (v membersView) ReplicationFactor(r *ring.Ring) int { return v.n.replicationFactor(r) }

func (v membersView) Placement() *ring.Placement { return v.n.members.Placement() }

func (v membersView) PeersKnow(next uint64) bool { return v.n.members.PeersKnow(next) }

func (v membersView) PeersAt(ring uint64) bool { return v.n.members.PeersAt(ring) }

func (v membersView) Holds(node string, next uint64, p uint32) bool {
	m, ok := v.n.members.Member(node)
	return ok && m.Holds(next, p)
}

func (v membersView) MarkHave(next uint64, p uint32) { v.n.members.MarkHave(next, p) }

func (v membersView) Activate() bool { return v.n.members.Activate() }

// Depart takes a leaving node out of the ring once its partitions moved,
// and tells whoever runs the node that it may exit.
func (v membersView) Depart() bool {
	if !v.n.members.Depart() {
		return false
	}
	v.n.leftOnce.Do(func() { close(v.n.left) })
	return true
}

// checkKey holds a key a peer names to the rules of a replica request: a
// valid key of the partition named, on this node's ring.
func (n *Node) checkKey(p uint32, bucket string, key []byte) error {
	if int(p) >= n.cfg.Partitions {
		return cairn.InvalidArgument("partition %d out of range (q=%d)", p, n.cfg.Partitions)
	}
	if err := wire.ValidateKey(bucket, key, n.cfg.MaxKeySize); err != nil {
		return err
	}
	if n.ring().KeyPartition(bucket, key) != p {
		return cairn.InvalidArgument("key does not belong to partition %d", p)
	}
	return nil
}

// newTrees makes the anti-entropy trees and hooks them into the store's
// options, when anti-entropy is on.
func (n *Node) newTrees(o *store.Options) *aae.Trees {
	if !n.cfg.AAE.Enabled {
		return nil
	}
	t := aae.NewTrees(n.cfg.Partitions)
	t.Hook(o)
	return t
}

// startAAE runs after the store opened and before the node accepts any
// write (it loads the saved trees).
func (n *Node) startAAE(trees *aae.Trees) error {
	a, err := aae.New(n.cfg.AAE, aae.Deps{
		Name: n.cfg.Name, Store: n.store, Peers: peerCaller{n: n, markDown: true}, Members: membersView{n}, Trees: trees,
		CheckKey: n.checkKey, MaxFrame: n.cfg.maxFrame(), Mode: n.bucketMode, Now: n.now, Logger: n.log, Registry: n.metrics.registry,
	})
	if err != nil {
		return fmt.Errorf("anti-entropy: %w", err)
	}
	n.aae = a
	return nil
}

func (n *Node) startHandoff() error {
	cfg := n.cfg.Handoff
	cfg.Deliver = n.cfg.HintedHandoff
	h, err := handoff.New(cfg, handoff.Deps{
		Name: n.cfg.Name, Store: n.store, Peers: peerCaller{n: n, markDown: true}, Members: membersView{n},
		CheckKey: n.checkKey, MaxFrame: n.cfg.maxFrame(), Mode: n.bucketMode, Now: n.now, Logger: n.log, Registry: n.metrics.registry,
	})
	if err != nil {
		return fmt.Errorf("hinted handoff: %w", err)
	}
	n.handoff = h
	return nil
}

func (n *Node) startTransfer() error {
	cfg := n.cfg.Transfer
	// A write routed before its coordinator knew the change lasts at most
	// its deadline: the first snapshot waits that long.
	cfg.Settle = max(cfg.Settle, n.cfg.RequestTimeout)
	t, err := transfer.New(cfg, transfer.Deps{
		Name: n.cfg.Name, Store: n.store, Peers: peerCaller{n: n, markDown: true}, Members: membersView{n},
		CheckKey: n.checkKey, MaxFrame: n.cfg.maxFrame(), Mode: n.bucketMode, Now: n.now, Logger: n.log, Registry: n.metrics.registry,
	})
	if err != nil {
		return fmt.Errorf("ownership transfer: %w", err)
	}
	n.transfer = t
	return nil
}
