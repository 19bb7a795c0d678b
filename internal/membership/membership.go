package membership

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/ring"
	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"golang.org/x/time/rate"
)

// persistRetry is how long the notifier waits before retrying a failed
// Persist; the state keeps changing in memory meanwhile.
const persistRetry = time.Second

// metaUpdateWait bounds how long re-advertising the node meta waits for the
// alive message to go out. Nothing depends on it having gone out (memberlist
// keeps retransmitting it), so the wait is only kept from being unbounded.
const metaUpdateWait = 50 * time.Millisecond

// Membership is one node's view of the cluster: the ring state it gossips
// and merges, and memberlist's word on who is alive. Its methods are safe
// for concurrent use.
type Membership struct {
	cfg    Config
	logOut *closableWriter
	logger *log.Logger
	ml     *memberlist.Memberlist
	queue  *memberlist.TransmitLimitedQueue
	gossip string // the gossip address memberlist advertises for this node

	mu          sync.RWMutex // guards state, md, self, ringMembers
	state       state
	md          metaState
	metaGen     atomic.Uint64 // raised after every change of meta
	self        *Member       // what this node says it is; nil until memberlist has started
	ringMembers []string      // the active set ring was built from
	ringSeats   map[string]string
	// joining is set while JoinCluster contacts the seeds: this node is
	// joining and alone, and must not take its partitions as the first
	// member of an empty cluster would.
	joining     atomic.Bool
	ring        atomic.Pointer[ring.Ring]
	placement   atomic.Pointer[ring.Placement]
	nextMembers []string // the member set next was built from
	nextSeats   map[string]string
	next        *ring.Ring

	liveMu   sync.RWMutex
	alive    map[string]string // peers memberlist reports alive or suspect -> gossip address
	peerRing map[string]uint64 // ring version each live peer advertises
	peerNext map[string]uint64 // next ring version each live peer advertises

	lastMeta atomic.Pointer[[]byte] // meta last handed to memberlist

	persistMu sync.Mutex // serialises Persist calls; guards persisted
	persisted []byte

	changed      chan struct{} // capacity 1: a pending, coalesced change
	stop         chan struct{}
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error

	dropped    atomic.Uint64
	dropLog    rate.Sometimes
	rejoinLog  map[string]bool // gossip addresses whose last join failed; rejoin goroutine only
	reasserted atomic.Uint64
}

// Stats counts events worth watching.
type Stats struct {
	// DroppedMessages counts remote ring states and updates refused as
	// malformed or from another cluster.
	DroppedMessages uint64
	// Reasserts counts the times gossip said this node was something it is
	// not and it raised its own entry's version to correct it. A steady
	// climb means two nodes are running under one name.
	Reasserts uint64
}

// Start joins the cluster. ctx bounds only the initial join: a node that
// reaches no seed is not in error, it runs alone and keeps trying every
// RejoinInterval. If ctx is already done, nothing is started.
func Start(ctx context.Context, cfg Config) (*Membership, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	out := &closableWriter{w: cfg.LogOutput}
	if out.w == nil {
		out.w = io.Discard
	}
	m := &Membership{
		cfg:       cfg,
		logOut:    out,
		logger:    log.New(out, "", log.LstdFlags),
		alive:     map[string]string{},
		peerRing:  map[string]uint64{},
		peerNext:  map[string]uint64{},
		changed:   make(chan struct{}, 1),
		stop:      make(chan struct{}),
		dropLog:   rate.Sometimes{Interval: 10 * time.Second},
		rejoinLog: map[string]bool{},
	}
	if len(cfg.State) > 0 {
		msg, err := decodeState(cfg.State)
		if err == nil {
			err = m.checkOrigin(msg)
		}
		if err != nil {
			return nil, fmt.Errorf("membership: persisted ring state: %w", err)
		}
		m.state = newState(msg.members)
		m.md.merge(msg.meta)
	} else {
		m.state = newState(nil)
	}
	m.persisted = cfg.State
	m.rebuildRingLocked()

	dataAddr, err := m.dialableDataAddr()
	if err != nil {
		m.logOut.close()
		return nil, err
	}
	m.cfg.DataAddr = dataAddr
	mlc, err := m.memberlistConfig()
	if err != nil {
		m.logOut.close()
		return nil, err
	}
	m.queue = &memberlist.TransmitLimitedQueue{NumNodes: m.numNodes, RetransmitMult: mlc.RetransmitMult}
	if m.ml, err = memberlist.Create(mlc); err != nil {
		m.logOut.close()
		return nil, fmt.Errorf("membership: start memberlist on %s: %w", cfg.BindAddr, err)
	}
	m.gossip = m.ml.LocalNode().Address()

	m.mu.Lock()
	m.self = &Member{Name: cfg.Name, Addr: m.cfg.DataAddr, Gossip: m.gossip, Status: StatusActive}
	cur, ok := m.state.members[cfg.Name]
	if ok && (cur.Status == StatusJoining || cur.Status == StatusLeaving) {
		// A restart in the middle of a change goes on with it.
		m.self.Status, m.self.HaveFor, m.self.Have = cur.Status, cur.HaveFor, cur.Have
	} else if !ok && cfg.Joining {
		m.self.Status, m.self.Replaces = StatusJoining, cfg.Replaces
	}
	if ok {
		// Once active, the member it replaced must stay out of the ring
		// even before that member's removal has reached every node.
		m.self.Replaces = cur.Replaces
	}
	entry, changed := m.state.assert(*m.self)
	m.rebuildRingLocked()
	m.mu.Unlock()
	if changed {
		m.broadcast(entry)
	}
	if err := m.persist(); err != nil {
		_ = m.ml.Shutdown()
		m.logOut.close()
		return nil, fmt.Errorf("membership: persist ring state: %w", err)
	}

	joined := make(chan struct{})
	m.wg.Add(2)
	go m.notifyLoop()
	go m.rejoinLoop(joined)
	m.signal()

	select {
	case <-joined:
	case <-ctx.Done():
		m.logger.Printf("[WARN] membership: initial join still running after %v; starting anyway", ctx.Err())
	}
	return m, nil
}

func (m *Membership) memberlistConfig() (*memberlist.Config, error) {
	host, portStr, err := net.SplitHostPort(m.cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("membership: bind address %q: %w", m.cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("membership: bind address %q: bad port", m.cfg.BindAddr)
	}
	mlc := memberlist.DefaultLANConfig()
	mlc.BindAddr = host
	mlc.BindPort = port
	mlc.AdvertisePort = port
	mlc.AdvertiseAddr = m.cfg.Advertise
	mlc.Logger = m.logger
	if m.cfg.Memberlist != nil {
		m.cfg.Memberlist(mlc)
	}
	if mlc.Logger != nil {
		mlc.LogOutput = nil
	}
	mlc.Name = m.cfg.Name
	mlc.Label = m.cfg.Cluster
	if m.cfg.Keyring != nil {
		mlc.Keyring = m.cfg.Keyring
		mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = true, true
	}
	d := &delegate{m}
	mlc.Delegate = d
	mlc.Events = d
	return mlc, nil
}

// dialableDataAddr gives the data address a host peers can dial when it is
// configured unspecified (0.0.0.0, ::, empty): the advertised address, else
// the gossip bind host, else the private IP memberlist itself would pick.
// It is settled before memberlist starts, so the node meta never carries an
// address nobody can reach.
func (m *Membership) dialableDataAddr() (string, error) {
	h, port, err := net.SplitHostPort(m.cfg.DataAddr)
	if err != nil {
		return "", fmt.Errorf("membership: data address %q: %w", m.cfg.DataAddr, err)
	}
	if !unspecified(h) {
		return m.cfg.DataAddr, nil
	}
	host := m.cfg.Advertise
	if host == "" {
		if bind, _, err := net.SplitHostPort(m.cfg.BindAddr); err == nil && !unspecified(bind) {
			host = bind
		}
	}
	if host == "" {
		if host, err = sockaddr.GetPrivateIP(); err != nil || host == "" {
			return "", fmt.Errorf("membership: data address %q has no host and no private IP was found (set an advertise address): %v", m.cfg.DataAddr, err)
		}
	}
	return net.JoinHostPort(host, port), nil
}

func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// checkOrigin refuses state encoded by another cluster, or for another Q.
func (m *Membership) checkOrigin(msg stateMsg) error {
	if msg.cluster != m.cfg.Cluster {
		return malformed("from cluster %.64q, this is %q", msg.cluster, m.cfg.Cluster)
	}
	if msg.partitions != m.cfg.Partitions {
		return malformed("for %d partitions, this cluster has %d", msg.partitions, m.cfg.Partitions)
	}
	return nil
}

// apply merges entries from a peer, re-asserts this node's own entry if they
// contradict it, and spreads whatever changed.
func (m *Membership) apply(in []Member, meta []MetaEntry) {
	m.mu.Lock()
	changed := m.state.merge(in)
	metaChanged := m.md.merge(meta)
	if len(metaChanged) > 0 {
		m.metaGen.Add(1)
	}
	var reasserted *Member
	if m.self != nil {
		if e, ok := m.state.assert(*m.self); ok {
			changed = append(changed, e)
			reasserted = &e
		}
	}
	if len(changed) > 0 {
		m.rebuildRingLocked()
	}
	m.mu.Unlock()
	if reasserted != nil {
		m.reasserted.Add(1)
		m.logger.Printf("[WARN] membership: gossip described %s differently; re-asserted it at version %d", reasserted.Name, reasserted.Version)
	}
	for _, e := range changed {
		m.broadcast(e)
	}
	for _, e := range metaChanged {
		m.broadcastMeta(e)
	}
	if len(changed) > 0 || len(metaChanged) > 0 {
		m.signal()
	}
}

// rebuildRingLocked builds a new ring only when the active set changed, so
// Ring hands out the same *ring.Ring while membership is stable, and the
// placement whenever anything changed (a flip is a change of a Have).
func (m *Membership) rebuildRingLocked() {
	owners := m.state.owners()
	if seats := m.state.seats(owners); m.ring.Load() == nil || !slices.Equal(owners, m.ringMembers) || !maps.Equal(seats, m.ringSeats) {
		m.ringMembers, m.ringSeats = owners, seats
		m.ring.Store(m.mustRing(owners, seats))
	}
	cur := m.ring.Load()
	next := owners
	if j, ok := m.state.joiner(); ok {
		next = append(slices.Clone(owners), j)
		if r := m.state.members[j].Replaces; r != "" {
			next = slices.DeleteFunc(next, func(n string) bool { return n == r })
		}
		slices.Sort(next)
	} else if l, ok := m.state.leaver(); ok && len(owners) > 1 {
		next = slices.DeleteFunc(slices.Clone(owners), func(n string) bool { return n == l })
	}
	if seats := m.state.seats(next); m.next == nil || !slices.Equal(next, m.nextMembers) || !maps.Equal(seats, m.nextSeats) {
		m.nextMembers, m.nextSeats = next, seats
		m.next = m.mustRing(next, seats)
	}
	nextRing := m.next
	if len(cur.Members()) == 0 {
		// Nothing to move from: the first node of a cluster created with
		// joining nodes only.
		nextRing = cur
	}
	nv := nextRing.Version()
	members := m.state.members
	m.placement.Store(ring.NewPlacement(cur, nextRing, m.cfg.replicas(), func(node string, p uint32) bool {
		return members[node].Holds(nv, p)
	}))
}

func (m *Membership) mustRing(members []string, seats map[string]string) *ring.Ring {
	r, err := ring.NewSeated(m.cfg.Partitions, members, seats)
	if err != nil {
		// Validate checked Q, names are validated on decode and state holds
		// at most ring.MaxMembers entries: nothing else makes New fail.
		panic(fmt.Sprintf("membership: build ring: %v", err))
	}
	return r
}

func (m *Membership) encodeLocked() []byte {
	return encodeState(m.cfg.Cluster, m.cfg.Partitions, m.state.sorted(), m.md.sorted()...)
}

// persist hands the current state to Persist unless it is what was last
// persisted. Encoding under persistMu makes the last call persist the newest
// state even when Remove and the notifier race.
func (m *Membership) persist() error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	m.mu.RLock()
	enc := m.encodeLocked()
	m.mu.RUnlock()
	if bytes.Equal(enc, m.persisted) {
		return nil
	}
	if m.cfg.Persist != nil {
		if err := m.cfg.Persist(enc); err != nil {
			return err
		}
	}
	m.persisted = enc
	return nil
}

// signal records that something changed; the notifier picks it up.
func (m *Membership) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// notifyLoop persists, re-advertises the node meta and calls OnChange, once
// per batch of changes, outside every memberlist callback and lock.
func (m *Membership) notifyLoop() {
	defer m.wg.Done()
	var retry <-chan time.Time
	for {
		select {
		case <-m.stop:
			if err := m.persist(); err != nil {
				m.logger.Printf("[ERR] membership: persist ring state on shutdown: %v", err)
			}
			return
		case <-m.changed:
		case <-retry:
		}
		retry = nil
		if err := m.persist(); err != nil {
			m.logger.Printf("[ERR] membership: persist ring state (retrying in %v): %v", persistRetry, err)
			retry = time.After(persistRetry)
		}
		if meta := m.meta(); !bytes.Equal(meta, m.advertisedMeta()) {
			// The error only says the wait ran out; the update is queued.
			_ = m.ml.UpdateNode(metaUpdateWait)
		}
		if m.cfg.OnChange != nil {
			m.cfg.OnChange()
		}
	}
}

func (m *Membership) meta() []byte {
	return encodeMeta(nodeMeta{Addr: m.cfg.DataAddr, RingVersion: m.Ring().Version(), Next: m.Placement().Next().Version()})
}

func (m *Membership) advertisedMeta() []byte {
	if p := m.lastMeta.Load(); p != nil {
		return *p
	}
	return nil
}

// Ring returns the ring in effect: over the active members and those
// leaving (they own their partitions until the change moving them away
// completes). It is immutable; the same value comes back until that set
// changes.
func (m *Membership) Ring() *ring.Ring { return m.ring.Load() }

// Placement returns where partitions are while a change is in flight: the
// ring in effect (Ring), the ring being moved to, and which partitions
// flipped. It is immutable; a new one comes with every change.
func (m *Membership) Placement() *ring.Placement { return m.placement.Load() }

// PeersKnow reports whether every live peer advertises next as the ring it
// is moving to, so that every coordinator sends writes to next's targets.
func (m *Membership) PeersKnow(next uint64) bool {
	m.liveMu.RLock()
	defer m.liveMu.RUnlock()
	for name := range m.alive {
		if m.peerNext[name] != next {
			return false
		}
	}
	return true
}

// PeersAt reports whether every live peer advertises v as the version of
// the ring it builds: none of them routes by an older one.
func (m *Membership) PeersAt(v uint64) bool {
	m.liveMu.RLock()
	defer m.liveMu.RUnlock()
	for name := range m.alive {
		if m.peerRing[name] != v {
			return false
		}
	}
	return true
}

// MarkHave records in this node's own entry that it received all of
// partition p for the change to the ring of version next, and spreads it.
// A mark for a change that is no longer in flight is ignored.
func (m *Membership) MarkHave(next uint64, p uint32) {
	m.updateSelf(func(self *Member) bool {
		if m.Placement().Next().Version() != next || int(p) >= m.cfg.Partitions {
			return false
		}
		if self.HaveFor != next {
			self.HaveFor, self.Have = next, ""
		}
		if self.Holds(next, p) {
			return false
		}
		have := []byte(self.Have)
		if len(have) < (m.cfg.Partitions+7)/8 {
			have = append(have, make([]byte, (m.cfg.Partitions+7)/8-len(have))...)
		}
		have[p/8] |= 1 << (p % 8)
		self.Have = string(have)
		return true
	})
}

// Activate makes a joining node active once every partition of its change
// flipped: the ring in effect becomes the one the data was moved to; or
// at once when no member is active yet. It reports whether it did. An
// active node that replaced a member then removes that member's entry
// (retrying on every call until it is removed), so the name never serves
// again.
func (m *Membership) Activate() bool {
	activated := m.activate()
	m.mu.RLock()
	var old string
	active := false
	if m.self != nil {
		old, active = m.self.Replaces, m.self.Status == StatusActive
	}
	e, known := m.state.members[old]
	m.mu.RUnlock()
	if active && old != "" && known && e.Status != StatusRemoved {
		if err := m.Remove(old); err != nil {
			m.logger.Printf("[WARN] membership: remove %s, which this node replaced: %v", old, err)
		}
	}
	return activated
}

func (m *Membership) activate() bool {
	return m.updateSelf(func(self *Member) bool {
		pl := m.Placement()
		if self.Status != StatusJoining {
			return false
		}
		// With no active member there is nothing to receive: a cluster
		// whose nodes all started joining (none bootstrapped) forms so.
		first := len(pl.Cur().Members()) == 0 && !m.joining.Load()
		if !first && (!pl.Done() || !slices.Contains(pl.Next().Members(), self.Name)) {
			return false
		}
		self.Status, self.HaveFor, self.Have = StatusActive, 0, ""
		return true
	})
}

// Replace makes this joining node take old's place: the change in flight
// becomes the move of old's partitions to this node (rather than a share
// of everyone's), and once it completes old owns nothing and is removed.
// old may be dead: each partition is streamed by the first of its current
// owners that is up. Replacing the member already replaced is a no-op.
func (m *Membership) Replace(old string) error {
	var err error
	m.updateSelf(func(self *Member) bool {
		e, ok := m.state.members[old]
		switch {
		case old == "":
			err = cairn.InvalidArgument("replace: a member name is required")
		case old == self.Name:
			err = cairn.InvalidArgument("replace %s %s: a member cannot replace itself", old, self.Name)
		case !ok:
			err = fmt.Errorf("replace %.64q: no such member: %w", old, cairn.ErrNotFound)
		case self.Replaces == old:
		case self.Status != StatusJoining:
			err = cairn.InvalidArgument("replace %s %s: %s is %s; only a node that joined and is not active yet can take a member's place "+
				"(start it with --join and without --bootstrap, or with --replace %s)", old, self.Name, self.Name, self.Status, old)
		case e.Status != StatusActive || m.state.replaced(old):
			err = cairn.InvalidArgument("replace %s %s: %s is %s; only an active member can be replaced", old, self.Name, old, cmp.Or(replacedWord(m.state.replaced(old)), string(e.Status)))
		default:
			self.Replaces, self.HaveFor, self.Have = old, 0, ""
			return true
		}
		return false
	})
	return err
}

func replacedWord(replaced bool) string {
	if replaced {
		return "already replaced"
	}
	return ""
}

// JoinCluster makes this node, active and alone in its ring state, join
// the cluster a seed (a member's gossip address) belongs to as a joining
// node: it receives its partitions by transfer before it owns them, as a
// node started with Join does. It turns joining before it contacts the
// seeds, so no node ever sees it active in their cluster; when no seed
// answers it is active and alone again and the error says so. The caller
// checks the node holds no data: its keys would not be moved.
func (m *Membership) JoinCluster(seeds []string) error {
	if len(seeds) == 0 {
		return cairn.InvalidArgument("join: a seed (a member's gossip address) is required")
	}
	for _, s := range seeds {
		if err := checkAddr(s); err != nil {
			return cairn.InvalidArgument("join: seed %v", err)
		}
	}
	if !m.joining.CompareAndSwap(false, true) {
		return cairn.InvalidArgument("join: a join is already under way")
	}
	defer m.joining.Store(false)
	var err error
	m.updateSelf(func(self *Member) bool {
		if self.Status != StatusActive || len(m.state.members) != 1 {
			err = cairn.InvalidArgument("join: %s is %s in a ring state of %d members; only a node alone in its own ring (started without --join) can join a cluster",
				self.Name, self.Status, len(m.state.members))
			return false
		}
		self.Status, self.HaveFor, self.Have = StatusJoining, 0, ""
		return true
	})
	if err != nil {
		return err
	}
	if n, jerr := m.ml.Join(seeds); n == 0 {
		m.updateSelf(func(self *Member) bool {
			if self.Status != StatusJoining {
				return false
			}
			self.Status = StatusActive
			return true
		})
		return fmt.Errorf("%w: join: no seed of %v answered: %v", cairn.ErrUnavailable, seeds, jerr)
	}
	return nil
}

// Leave makes this active node leaving: its partitions move to the other
// members (one change at a time, after any join in flight), and once
// every one flipped Depart takes it out of the ring.
func (m *Membership) Leave() error {
	var err error
	m.updateSelf(func(self *Member) bool {
		switch {
		case self.Status == StatusLeaving:
			return false
		case self.Status != StatusActive:
			err = cairn.InvalidArgument("leave %s: it is %s; only an active member can leave", self.Name, self.Status)
			return false
		case len(m.state.owners()) < 2:
			err = cairn.InvalidArgument("leave %s: it is the last member; nothing could take its partitions", self.Name)
			return false
		}
		self.Status, self.HaveFor, self.Have = StatusLeaving, 0, ""
		return true
	})
	return err
}

// Depart takes a leaving node out of the ring once every partition of its
// change flipped: its entry becomes removed (final), and the ring in
// effect becomes the one its data moved to. It reports whether it did.
func (m *Membership) Depart() bool {
	return m.updateSelf(func(self *Member) bool {
		pl := m.Placement()
		if self.Status != StatusLeaving || !pl.Changing() || !pl.Done() || slices.Contains(pl.Next().Members(), self.Name) {
			return false
		}
		self.Status, self.HaveFor, self.Have = StatusRemoved, 0, ""
		return true
	})
}

// updateSelf changes this node's own entry with fn (which reports whether
// it changed anything) and spreads the new entry.
func (m *Membership) updateSelf(fn func(self *Member) bool) bool {
	m.mu.Lock()
	if m.self == nil {
		m.mu.Unlock()
		return false
	}
	self := *m.self
	if !fn(&self) {
		m.mu.Unlock()
		return false
	}
	m.self = &self
	e, changed := m.state.assert(self)
	if changed {
		m.rebuildRingLocked()
	}
	m.mu.Unlock()
	if changed {
		m.broadcast(e)
		m.signal()
	}
	return changed
}

// Members returns every member ever heard of, sorted by name, removed ones
// included. A member that died is still here: liveness is Alive's business.
func (m *Membership) Members() []Member {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.state.sorted()
}

// Alive reports whether memberlist considers the member reachable now (alive
// or suspect). A node is always alive to itself.
func (m *Membership) Alive(name string) bool {
	if name == m.cfg.Name {
		return true
	}
	m.liveMu.RLock()
	defer m.liveMu.RUnlock()
	_, ok := m.alive[name]
	return ok
}

// Addr returns the data address of a member, removed ones included.
func (m *Membership) Addr(name string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.state.members[name]
	return e.Addr, ok
}

// Member returns the entry of a member, removed ones included.
func (m *Membership) Member(name string) (Member, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.state.members[name]
	return e, ok
}

// GossipAddr returns the gossip address this node advertises, with the real
// port when BindAddr asked for port 0.
func (m *Membership) GossipAddr() string { return m.gossip }

// Stats returns counters since Start.
func (m *Membership) Stats() Stats {
	return Stats{DroppedMessages: m.dropped.Load(), Reasserts: m.reasserted.Load()}
}

// Remove takes a member out of the ring for good: its entry becomes removed
// at the next version and is gossiped to every node, and the name never
// owns partitions again, even if the node comes back (it stays removed; a
// node returning to service needs a new name). Removing a removed member is
// a no-op. The removal takes effect even when persisting it fails; the
// error says so and the notifier keeps retrying.
func (m *Membership) Remove(name string) error {
	if name == "" {
		return cairn.InvalidArgument("remove: empty member name")
	}
	m.mu.Lock()
	e, ok := m.state.members[name]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("remove %.64q: %w", name, cairn.ErrNotFound)
	}
	if e.Status == StatusRemoved {
		m.mu.Unlock()
		return nil
	}
	e.Status = StatusRemoved
	e.Version++
	m.state.members[name] = e
	m.rebuildRingLocked()
	m.mu.Unlock()
	m.logger.Printf("[INFO] membership: removed %s at version %d", name, e.Version)
	m.broadcast(e)
	m.signal()
	if err := m.persist(); err != nil {
		return fmt.Errorf("remove %s: applied, but persisting ring state failed: %w", name, err)
	}
	return nil
}

// Shutdown stops every goroutine, announces the leave (bounded by
// LeaveTimeout) and stops memberlist. It waits for a join in flight, which
// memberlist bounds by its TCPTimeout. It is safe to call more than once.
func (m *Membership) Shutdown() error {
	m.shutdownOnce.Do(func() {
		close(m.stop)
		m.wg.Wait()
		if t := m.cfg.leaveTimeout(); t > 0 {
			if err := m.ml.Leave(t); err != nil {
				m.logger.Printf("[DEBUG] membership: leave: %v", err)
			}
		}
		m.shutdownErr = m.ml.Shutdown()
		// memberlist's suspicion timers outlive its Shutdown and log when
		// they fire; the caller's log may be gone by then.
		m.logOut.close()
	})
	return m.shutdownErr
}

// numNodes sizes the broadcast retransmit count: live peers and this node.
func (m *Membership) numNodes() int {
	m.liveMu.RLock()
	defer m.liveMu.RUnlock()
	return len(m.alive) + 1
}

// closableWriter passes log lines on until closed, then drops them, so that
// nothing reaches LogOutput once Shutdown has returned.
type closableWriter struct {
	mu     sync.RWMutex
	w      io.Writer
	closed bool
}

func (c *closableWriter) Write(p []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *closableWriter) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
}
