package membership

import (
	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks. They run on memberlist's
// goroutines, some of them on its packet receive loop, so each one takes a
// lock for a map update at most and leaves slow work (Persist, OnChange,
// re-advertising) to the notifier. Every byte they are handed comes from the
// network and is decoded with decodeState or decodeMeta, never trusted.
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

// NodeMeta advertises the data address and ring version (see nodeMeta).
func (d *delegate) NodeMeta(limit int) []byte {
	meta := d.m.meta()
	if len(meta) > limit {
		// Validate bounds the data address far below memberlist's limit.
		return nil
	}
	d.m.lastMeta.Store(&meta)
	return meta
}

// NotifyMsg receives a broadcast of changed entries.
func (d *delegate) NotifyMsg(b []byte) { d.m.receive("ring update", b) }

// GetBroadcasts hands memberlist the queued entry changes.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.queue.GetBroadcasts(overhead, limit)
}

// LocalState is the full ring state, for push/pull and joins.
func (d *delegate) LocalState(join bool) []byte {
	d.m.mu.RLock()
	defer d.m.mu.RUnlock()
	return d.m.encodeLocked()
}

// MergeRemoteState merges a peer's full ring state.
func (d *delegate) MergeRemoteState(b []byte, join bool) { d.m.receive("ring state", b) }

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.m.live(n, true) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.live(n, true) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.m.live(n, false) }

// receive decodes remote ring state and merges it; anything malformed, from
// another cluster or for another Q is dropped whole.
func (m *Membership) receive(what string, b []byte) {
	msg, err := decodeState(b)
	if err == nil {
		err = m.checkOrigin(msg)
	}
	if err != nil {
		n := m.dropped.Add(1)
		m.dropLog.Do(func() {
			m.logger.Printf("[WARN] membership: dropped %s of %d bytes: %v (%d dropped so far)", what, len(b), err, n)
		})
		return
	}
	m.apply(msg.members, msg.meta)
}

// live records what memberlist says about a peer's liveness and meta.
func (m *Membership) live(n *memberlist.Node, alive bool) {
	if n.Name == m.cfg.Name {
		return
	}
	meta, metaOK := decodeMeta(n.Meta)
	m.liveMu.Lock()
	_, wasAlive := m.alive[n.Name]
	if alive {
		m.alive[n.Name] = n.Address()
		if metaOK {
			m.peerRing[n.Name] = meta.RingVersion
			m.peerNext[n.Name] = meta.Next
		} else {
			delete(m.peerRing, n.Name)
			delete(m.peerNext, n.Name)
		}
	} else {
		delete(m.alive, n.Name)
		delete(m.peerRing, n.Name)
		delete(m.peerNext, n.Name)
	}
	m.liveMu.Unlock()
	if alive != wasAlive {
		m.signal()
	}
}

// entryBroadcast spreads one member's entry. A newer broadcast for the same
// member replaces a queued older one.
type entryBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*entryBroadcast)(nil)

func (b *entryBroadcast) Invalidates(other memberlist.Broadcast) bool {
	nb, ok := other.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.name
}
func (b *entryBroadcast) Name() string    { return b.name }
func (b *entryBroadcast) Message() []byte { return b.msg }
func (b *entryBroadcast) Finished()       {}

// Broadcast names start with a byte that tells a member's entry from a
// metadata entry, whose prefix holds no NUL, so no two entries share one.
func (m *Membership) broadcast(e Member) {
	m.queue.QueueBroadcast(&entryBroadcast{name: "m\x00" + e.Name, msg: encodeState(m.cfg.Cluster, m.cfg.Partitions, []Member{e})})
}

func (m *Membership) broadcastMeta(e MetaEntry) {
	m.queue.QueueBroadcast(&entryBroadcast{name: "d\x00" + e.Prefix + "\x00" + e.Key,
		msg: encodeState(m.cfg.Cluster, m.cfg.Partitions, nil, e)})
}
