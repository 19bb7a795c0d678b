package node

import (
	"context"
	"fmt"
	"net"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/ring"
	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// ringStateMeta is the metadata key under which the node keeps the merged
// ring state, so that a restart with the same data directory rejoins with the
// same view and identity.
const ringStateMeta = "ring-state"

func (n *Node) startMembership(ctx context.Context) error {
	state, _, err := n.store.GetMeta(ringStateMeta)
	if err != nil {
		return fmt.Errorf("read ring state: %w", err)
	}
	mc := membership.DefaultConfig()
	mc.Name = n.cfg.Name
	mc.Cluster = n.cfg.Cluster
	mc.BindAddr = n.cfg.Gossip
	mc.DataAddr = n.Addr()
	if n.cfg.Advertise != "" {
		ip, err := resolveAdvertise(ctx, n.cfg.Advertise)
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(n.Addr())
		mc.Advertise, mc.DataAddr = ip, net.JoinHostPort(ip, port)
	}
	mc.Join = n.cfg.Join
	mc.Partitions = n.cfg.Partitions
	if n.keyring != nil {
		mc.Keyring = n.keyring.ring
	}
	mc.Replicas = n.cfg.N
	// A node given seeds joins a cluster that may hold data: it owns its
	// partitions only once they were streamed to it. The nodes of a new
	// cluster (Bootstrap) have nothing to receive.
	mc.Joining = len(n.cfg.Join) > 0 && !n.cfg.Bootstrap
	if mc.Joining {
		mc.Replaces = n.cfg.Replace
	}
	mc.State = state
	mc.Persist = func(state []byte) error { return n.store.PutMeta(ringStateMeta, state) }
	// memberlist reports changes from the moment it starts, before
	// n.members is set: those early calls are covered by the explicit
	// onMembershipChange once Start returns.
	mc.OnChange = func() {
		if n.membersSet.Load() {
			n.onMembershipChange()
		}
	}
	mc.LogOutput = gossipLog{n.log.Named("gossip")}
	mc.RejoinInterval = n.cfg.RejoinInterval
	mc.Memberlist = func(c *memberlist.Config) {
		if n.cfg.GossipProfile == "local" {
			local := memberlist.DefaultLocalConfig()
			c.TCPTimeout, c.ProbeInterval, c.ProbeTimeout = local.TCPTimeout, local.ProbeInterval, local.ProbeTimeout
			c.SuspicionMult, c.GossipInterval, c.PushPullInterval = local.SuspicionMult, local.GossipInterval, local.PushPullInterval
			c.GossipToTheDeadTime, c.IndirectChecks = local.GossipToTheDeadTime, local.IndirectChecks
		}
		if n.cfg.tuneMemberlist != nil {
			n.cfg.tuneMemberlist(c)
		}
	}
	m, err := membership.Start(ctx, mc)
	if err != nil {
		return fmt.Errorf("start membership on %s: %w", n.cfg.Gossip, err)
	}
	n.members = m
	n.membersSet.Store(true)
	return nil
}

// resolveAdvertise turns the advertise host into the IP memberlist needs,
// preferring IPv4.
func resolveAdvertise(ctx context.Context, host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("advertise %q: cannot resolve: %v", host, err)
	}
	for _, ip := range ips {
		if ip.IP.To4() != nil {
			return ip.IP.String(), nil
		}
	}
	return ips[0].IP.String(), nil
}

// onMembershipChange logs ring changes once per change, not per gossip
// message.
func (n *Node) onMembershipChange() {
	r := n.members.Ring()
	if prev := n.lastRing.Swap(r); prev == nil || prev.Version() != r.Version() {
		n.log.Info("ring changed", zap.Strings("members", r.Members()), zap.Uint64("version", r.Version()))
	}
	if pl := n.members.Placement(); pl.Changing() {
		if prev := n.lastChange.Swap(pl.Next().Version()); prev != pl.Next().Version() {
			n.log.Info("membership change in flight: partitions move to their next owners before reads do",
				zap.Strings("members", pl.Cur().Members()), zap.Strings("next", pl.Next().Members()),
				zap.Uint64("next_version", pl.Next().Version()))
		}
	}
	n.metrics.membersAlive.Set(float64(n.aliveCount()))
	back := n.peersBack()
	for _, back := range back {
		// Connections that lived through its absence may be wedged (a
		// partition leaves them in TCP's retransmission backoff): start
		// afresh.
		if addr, ok := n.members.Addr(back); ok {
			n.peers.Drain(addr)
		}
	}
	// A node may have come back: deliver what is kept for it now rather
	// than at the next interval, and exchange the partitions shared with
	// it first.
	n.handoff.Poke()
	n.aae.MembershipChanged(back)
	n.transfer.Poke()
}

// peersBack returns the members that are alive now and were not at the
// previous call. At the first call (the node's start) that is every peer
// alive: from this node's point of view they were always there, but it
// is the one that was away, and it missed what they wrote meanwhile.
func (n *Node) peersBack() []string {
	n.aliveMu.Lock()
	defer n.aliveMu.Unlock()
	var back []string
	now := map[string]bool{}
	for _, m := range n.members.Members() {
		if m.Name == n.cfg.Name || !n.members.Alive(m.Name) {
			continue
		}
		now[m.Name] = true
		if !n.wasAlive[m.Name] {
			back = append(back, m.Name)
		}
	}
	n.wasAlive = now
	return back
}

func (n *Node) aliveCount() int {
	alive := 0
	for _, m := range n.members.Members() {
		if n.members.Alive(m.Name) {
			alive++
		}
	}
	return alive
}

// ring is the current ring; requests take it once and use that view
// throughout, so a concurrent change never mixes two views in one request.
func (n *Node) ring() *ring.Ring { return n.members.Ring() }

// replicationFactor is the number of distinct nodes that hold each key: the
// configured N, or the whole ring when the cluster has fewer nodes.
func (n *Node) replicationFactor(r *ring.Ring) int {
	return min(n.cfg.N, len(r.Members()))
}

// route is where a request for partition p goes while membership may be
// changing: the primaries and fallbacks reads use (the current owners, or
// the next ones once p flipped), and the pending replicas writes go to as
// well (see ring.Placement.Route).
func (n *Node) route(p uint32, replicas int) (primaries, fallbacks, pending []string) {
	return n.members.Placement().Route(p, replicas)
}
