package membership

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"unicode/utf8"

	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/ring"
	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
)

// Status is where a member stands in the ring. Only active members own
// partitions; the others are remembered so that every node agrees on them.
type Status string

const (
	StatusJoining Status = "joining"
	StatusActive  Status = "active"
	StatusLeaving Status = "leaving"
	// StatusRemoved is final: an operator took the member out, and the name
	// never owns partitions again (see Remove).
	StatusRemoved Status = "removed"
)

func (s Status) known() bool {
	switch s {
	case StatusJoining, StatusActive, StatusLeaving, StatusRemoved:
		return true
	}
	return false
}

// Member is one entry of the ring state.
type Member struct {
	Name string
	// Addr is the member's data address, Gossip its memberlist address.
	Addr, Gossip string
	Status       Status
	// Version orders the entry's changes: whoever changes an entry (the
	// member itself, or an operator through Remove) raises it by one, and
	// every node keeps the entry with the highest version.
	Version uint64
	// HaveFor and Have record the partitions this member received whole for
	// the change to the ring whose version is HaveFor: bit p of Have (byte
	// p/8, bit p%8) is set once partition p was streamed to it and it
	// confirmed. They mean nothing once another change is in flight.
	HaveFor uint64
	Have    string
	// Replaces names the member this one takes the place of (cairn replace
	// OLD NEW sets it on NEW). While this member joins, the change in
	// flight moves OLD's partitions to it; once it is active, OLD owns
	// nothing, whatever OLD's own entry says, so the hand-over happens in
	// this one entry and no node ever builds a ring with both or neither.
	Replaces string
}

// Holds reports whether the member confirmed it received partition p for
// the change to the ring of version next.
func (e Member) Holds(next uint64, p uint32) bool {
	return e.HaveFor == next && int(p/8) < len(e.Have) && e.Have[p/8]&(1<<(p%8)) != 0
}

// Limits on what remote ring state may hold. Names and addresses are short in
// practice; the bounds keep one entry inside a gossip packet and a whole
// state within what a node builds a ring from.
const (
	maxNameLen    = 255
	maxAddrLen    = 255
	maxMembers    = ring.MaxMembers
	maxStateBytes = 4 << 20
	formatVersion = 1
)

// stateLimits bound the shape of an encoded state: every member's and
// metadata entry's fields, with room to spare, and no deeper nesting than
// the format has.
var stateLimits = mpcheck.Limits{MaxDepth: 8, MaxElements: 16*maxMembers + 8*maxMetaEntries}

// supersedes reports whether entry a replaces entry b of the same member.
// The higher version wins. Two different entries with the same version are
// possible (an operator's Remove racing the member's own change); removal
// wins so that an operator's decision is never undone by a race, and any
// remaining tie goes to the larger content so every node picks the same one.
func supersedes(a, b Member) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	if a == b {
		return false
	}
	if ra, rb := a.Status == StatusRemoved, b.Status == StatusRemoved; ra != rb {
		return ra
	}
	return cmp.Or(
		cmp.Compare(a.Status, b.Status),
		cmp.Compare(a.Addr, b.Addr),
		cmp.Compare(a.Gossip, b.Gossip),
		cmp.Compare(a.HaveFor, b.HaveFor),
		cmp.Compare(a.Have, b.Have),
		cmp.Compare(a.Replaces, b.Replaces),
	) > 0
}

// state is the merged ring state: the latest entry of every member ever
// heard of. It is pure data; Membership guards it with a lock.
type state struct {
	members map[string]Member
}

func newState(entries []Member) state {
	s := state{members: make(map[string]Member, len(entries))}
	s.merge(entries)
	return s
}

// merge keeps, for each incoming entry, whichever of it and the local entry
// supersedes the other, and returns the entries that changed. Merging is
// commutative, associative and idempotent, so nodes converge whatever order
// gossip delivers entries in.
func (s *state) merge(in []Member) []Member {
	var changed []Member
	for _, e := range in {
		if cur, ok := s.members[e.Name]; ok && !supersedes(e, cur) {
			continue
		}
		s.members[e.Name] = e
		changed = append(changed, e)
	}
	return changed
}

// assert makes the entry of want.Name say what want says (want.Version is
// ignored), raising its version above any version seen, and reports the new
// entry. A removed entry stays removed: that was an operator's decision, and
// a restarted node must not overturn it.
func (s *state) assert(want Member) (Member, bool) {
	cur, ok := s.members[want.Name]
	if ok && cur.Status == StatusRemoved {
		return cur, false
	}
	want.Version = cur.Version
	if ok && cur == want {
		return cur, false
	}
	want.Version = cur.Version + 1
	s.members[want.Name] = want
	return want, true
}

// sorted returns every entry, ordered by name.
func (s state) sorted() []Member {
	out := slices.Collect(maps.Values(s.members))
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// joiner returns the joining member whose change is in flight: the one
// with the least name, so that every node moves to the same next ring and
// changes happen one at a time.
func (s state) joiner() (string, bool) {
	var first string
	for name, e := range s.members {
		if e.Status == StatusJoining && (first == "" || name < first) {
			first = name
		}
	}
	return first, first != ""
}

// leaver returns the leaving member with the least name: the change in
// flight when no member is joining.
func (s state) leaver() (string, bool) {
	var first string
	for name, e := range s.members {
		if e.Status == StatusLeaving && (first == "" || name < first) {
			first = name
		}
	}
	return first, first != ""
}

// owners returns the names of the members that own partitions now, sorted:
// the active ones and those leaving, which own theirs until the change
// that moves them away completes; but not a member an active member
// replaced.
func (s state) owners() []string {
	var names []string
	for name, e := range s.members {
		if (e.Status == StatusActive || e.Status == StatusLeaving) && !s.replaced(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// seats returns the seat of each member of names (a ring's member set)
// that sits in another's (see ring.NewSeated): a member that replaced
// another claims partitions as that one did, through any chain of
// replacements. Active members are seated first, so a joining node whose
// replaced member was meanwhile taken over by another keeps its own seat
// and joins like any node; no seat is given twice or equals another
// member's name, whatever gossip says.
func (s state) seats(names []string) map[string]string {
	var seats map[string]string
	taken := make(map[string]bool, len(names))
	for _, n := range names {
		taken[n] = true
	}
	ordered := slices.Clone(names)
	slices.SortStableFunc(ordered, func(a, b string) int {
		return cmp.Compare(rankStatus(s.members[a].Status), rankStatus(s.members[b].Status))
	})
	for _, n := range ordered {
		seat := n
		for hops := 0; hops <= len(s.members); hops++ {
			e, ok := s.members[seat]
			if !ok || e.Replaces == "" {
				break
			}
			seat = e.Replaces
		}
		if seat == n || taken[seat] {
			continue
		}
		taken[seat] = true
		if seats == nil {
			seats = map[string]string{}
		}
		seats[n] = seat
	}
	return seats
}

func rankStatus(st Status) int {
	if st == StatusActive {
		return 0
	}
	return 1
}

// replaced reports whether an active member replaced name.
func (s state) replaced(name string) bool {
	for _, e := range s.members {
		if e.Status == StatusActive && e.Replaces == name {
			return true
		}
	}
	return false
}

// wireState is the encoding of ring state, on the wire and on disk: a full
// state in push/pull and Persist, the changed entries in a broadcast.
//
//	{"f": format (1), "c": cluster, "q": partitions,
//	 "m": [{"n": name, "a": data addr, "g": gossip addr, "s": status, "v": version,
//	        "hf": have-for ring version, "h": have bitset (omitted when empty),
//	        "rp": the member it replaces (omitted when none)}, ...],
//	 "md": [cluster metadata entries (see wireMeta); omitted when none]}
//
// Members are sorted by name and metadata by prefix and key, so equal
// states encode to equal bytes. "md" came after format 1 was in use: a
// node that predates it ignores the field, as it ignores any unknown one.
type wireState struct {
	Format     int          `msgpack:"f"`
	Cluster    string       `msgpack:"c"`
	Partitions int          `msgpack:"q"`
	Members    []wireMember `msgpack:"m"`
	Meta       []wireMeta   `msgpack:"md,omitempty"`
}

type wireMember struct {
	Name     string `msgpack:"n"`
	Addr     string `msgpack:"a"`
	Gossip   string `msgpack:"g"`
	Status   string `msgpack:"s"`
	Version  uint64 `msgpack:"v"`
	HaveFor  uint64 `msgpack:"hf,omitempty"`
	Have     []byte `msgpack:"h,omitempty"`
	Replaces string `msgpack:"rp,omitempty"`
}

// stateMsg is a decoded, validated wireState.
type stateMsg struct {
	cluster    string
	partitions int
	members    []Member
	meta       []MetaEntry
}

func encodeState(cluster string, partitions int, members []Member, meta ...MetaEntry) []byte {
	ws := wireState{Format: formatVersion, Cluster: cluster, Partitions: partitions, Members: make([]wireMember, len(members)),
		Meta: toWireMeta(meta)}
	for i, m := range members {
		ws.Members[i] = wireMember{Name: m.Name, Addr: m.Addr, Gossip: m.Gossip, Status: string(m.Status), Version: m.Version,
			HaveFor: m.HaveFor, Have: []byte(m.Have), Replaces: m.Replaces}
	}
	b, err := msgpack.Marshal(&ws)
	if err != nil {
		// Strings, ints and slices always encode; failing here is a bug.
		panic(fmt.Sprintf("membership: encode ring state: %v", err))
	}
	return b
}

var errMalformedState = errors.New("malformed ring state")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformedState, fmt.Sprintf(format, args...))
}

// decodeState decodes and validates untrusted bytes. Every error wraps
// errMalformedState; the bytes are checked by mpcheck before the decoder
// sees them, so no declared length makes it allocate beyond the input's size.
func decodeState(b []byte) (stateMsg, error) {
	if len(b) > maxStateBytes {
		return stateMsg{}, malformed("%d bytes, more than %d", len(b), maxStateBytes)
	}
	var ws wireState
	if err := mpcheck.UnmarshalLimits(b, &ws, stateLimits); err != nil {
		return stateMsg{}, malformed("%v", err)
	}
	if ws.Format != formatVersion {
		return stateMsg{}, malformed("format %d, want %d", ws.Format, formatVersion)
	}
	if len(ws.Members) > maxMembers {
		return stateMsg{}, malformed("%d members, more than %d", len(ws.Members), maxMembers)
	}
	msg := stateMsg{cluster: ws.Cluster, partitions: ws.Partitions, members: make([]Member, 0, len(ws.Members))}
	seen := make(map[string]bool, len(ws.Members))
	for _, w := range ws.Members {
		m := Member{Name: w.Name, Addr: w.Addr, Gossip: w.Gossip, Status: Status(w.Status), Version: w.Version,
			HaveFor: w.HaveFor, Have: string(w.Have), Replaces: w.Replaces}
		if err := checkMember(m); err != nil {
			return stateMsg{}, malformed("member %.64q: %v", m.Name, err)
		}
		if len(m.Have) > (max(ws.Partitions, 0)+7)/8 {
			err := fmt.Errorf("have bitset of %d bytes for %d partitions", len(m.Have), ws.Partitions)
			return stateMsg{}, malformed("member %.64q: %v", m.Name, err)
		}
		if seen[m.Name] {
			return stateMsg{}, malformed("member %q twice", m.Name)
		}
		seen[m.Name] = true
		msg.members = append(msg.members, m)
	}
	meta, err := fromWireMeta(ws.Meta)
	if err != nil {
		return stateMsg{}, malformed("%v", err)
	}
	msg.meta = meta
	return msg, nil
}

func checkMember(m Member) error {
	if err := checkName(m.Name); err != nil {
		return err
	}
	if err := checkAddr(m.Addr); err != nil {
		return fmt.Errorf("data address: %w", err)
	}
	if err := checkAddr(m.Gossip); err != nil {
		return fmt.Errorf("gossip address: %w", err)
	}
	if !m.Status.known() {
		return fmt.Errorf("unknown status %.32q", m.Status)
	}
	if m.Version == 0 {
		return errors.New("version 0")
	}
	if m.Replaces != "" {
		if err := checkName(m.Replaces); err != nil {
			return fmt.Errorf("replaces: %w", err)
		}
		if m.Replaces == m.Name {
			return errors.New("replaces itself")
		}
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("%.64q: want 1 to %d bytes of UTF-8", name, maxNameLen)
	}
	return nil
}

func checkAddr(addr string) error {
	if len(addr) > maxAddrLen {
		return fmt.Errorf("%d bytes, more than %d", len(addr), maxAddrLen)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%.64q: want host:port", addr)
	}
	return nil
}

// nodeMeta is what a node puts in memberlist's node meta: its data address,
// and the version of the ring it currently builds, so a peer can tell that
// the two of them disagree and sync state (see rejoinTargets).
type nodeMeta struct {
	Addr        string `msgpack:"a"`
	RingVersion uint64 `msgpack:"r"`
	// Next is the version of the ring a change in flight moves to (the
	// ring's own when none is): a node streams a partition only once
	// every live peer advertises the change, so every coordinator already
	// sends writes to the partition's targets.
	Next uint64 `msgpack:"n,omitempty"`
}

func encodeMeta(m nodeMeta) []byte {
	b, err := msgpack.Marshal(&m)
	if err != nil {
		panic(fmt.Sprintf("membership: encode node meta: %v", err))
	}
	return b
}

func decodeMeta(b []byte) (nodeMeta, bool) {
	var m nodeMeta
	if len(b) > memberlist.MetaMaxSize || mpcheck.Unmarshal(b, &m) != nil {
		return nodeMeta{}, false
	}
	return m, true
}
