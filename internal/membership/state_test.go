package membership

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

func entry(name string, status Status, version uint64) Member {
	return Member{Name: name, Addr: name + ":1", Gossip: name + ":2", Status: status, Version: version}
}

func TestSupersedes(t *testing.T) {
	moved := entry("a", StatusActive, 3)
	moved.Addr = "b:1"
	for _, tc := range []struct {
		name string
		a, b Member
		want bool
	}{
		{"higher version wins", entry("a", StatusActive, 4), entry("a", StatusRemoved, 3), true},
		{"lower version loses", entry("a", StatusRemoved, 3), entry("a", StatusActive, 4), false},
		{"identical entry is not newer", entry("a", StatusActive, 3), entry("a", StatusActive, 3), false},
		{"removal wins a tie", entry("a", StatusRemoved, 3), entry("a", StatusActive, 3), true},
		{"removal keeps a tie", entry("a", StatusActive, 3), entry("a", StatusRemoved, 3), false},
		{"tie on content: larger wins", moved, entry("a", StatusActive, 3), true},
		{"tie on content: smaller loses", entry("a", StatusActive, 3), moved, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, supersedes(tc.a, tc.b))
		})
	}
}

func TestAssert(t *testing.T) {
	want := entry("me", StatusActive, 0)

	t.Run("first start adds itself at version 1", func(t *testing.T) {
		s := newState(nil)
		e, changed := s.assert(want)
		require.True(t, changed)
		require.Equal(t, uint64(1), e.Version)
		require.Equal(t, e, s.members["me"])
	})
	t.Run("unchanged entry keeps its version", func(t *testing.T) {
		s := newState([]Member{entry("me", StatusActive, 7)})
		_, changed := s.assert(want)
		require.False(t, changed)
		require.Equal(t, uint64(7), s.members["me"].Version)
	})
	t.Run("new data address bumps the version", func(t *testing.T) {
		s := newState([]Member{entry("me", StatusActive, 7)})
		moved := want
		moved.Addr = "elsewhere:1"
		e, changed := s.assert(moved)
		require.True(t, changed)
		require.Equal(t, uint64(8), e.Version)
		require.Equal(t, "elsewhere:1", s.members["me"].Addr)
	})
	t.Run("leaving becomes active again", func(t *testing.T) {
		s := newState([]Member{entry("me", StatusLeaving, 7)})
		e, changed := s.assert(want)
		require.True(t, changed)
		require.Equal(t, StatusActive, e.Status)
		require.Equal(t, uint64(8), e.Version)
	})
	t.Run("removed stays removed", func(t *testing.T) {
		s := newState([]Member{entry("me", StatusRemoved, 7)})
		_, changed := s.assert(want)
		require.False(t, changed)
		require.Equal(t, entry("me", StatusRemoved, 7), s.members["me"])
	})
}

func TestMergeReportsOnlyChanges(t *testing.T) {
	s := newState([]Member{entry("a", StatusActive, 2), entry("b", StatusActive, 2)})
	changed := s.merge([]Member{
		entry("a", StatusActive, 1),  // older: ignored
		entry("b", StatusRemoved, 3), // newer: taken
		entry("c", StatusActive, 1),  // unknown: taken
		entry("a", StatusActive, 2),  // same: ignored
	})
	require.Equal(t, []Member{entry("b", StatusRemoved, 3), entry("c", StatusActive, 1)}, changed)
	require.Equal(t, []string{"a", "c"}, s.owners())
}

// Nodes receive the same entries in different orders, some of them several
// times; they must end with the same state, the one a model (the maximum
// entry per name under supersedes) predicts.
func TestMergeConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) Member {
			return Member{
				Name:    rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "name"),
				Addr:    rapid.SampledFrom([]string{"h:1", "h:2"}).Draw(t, "addr"),
				Gossip:  "h:9",
				Status:  rapid.SampledFrom([]Status{StatusJoining, StatusActive, StatusLeaving, StatusRemoved}).Draw(t, "status"),
				Version: rapid.Uint64Range(1, 4).Draw(t, "version"),
			}
		})
		entries := rapid.SliceOf(gen).Draw(t, "entries")
		model := map[string]Member{}
		for _, e := range entries {
			if cur, ok := model[e.Name]; !ok || supersedes(e, cur) {
				model[e.Name] = e
			}
		}
		for range 3 {
			perm := rapid.Permutation(entries).Draw(t, "order")
			// Deliver in batches, with repeats, as gossip does.
			s := newState(nil)
			for len(perm) > 0 {
				n := rapid.IntRange(1, len(perm)).Draw(t, "batch")
				s.merge(perm[:n])
				s.merge(perm[:n])
				perm = perm[n:]
			}
			require.Equal(t, model, s.members)
		}
	})
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	joining := entry("d", StatusJoining, 3)
	joining.HaveFor, joining.Have = 77, "\x05\x00\x80"
	s := newState([]Member{entry("b", StatusRemoved, 9), entry("a", StatusActive, 1), entry("c", StatusLeaving, 2), joining})
	b := encodeState("prod", 256, s.sorted())
	msg, err := decodeState(b)
	require.NoError(t, err)
	require.Equal(t, stateMsg{cluster: "prod", partitions: 256, members: s.sorted()}, msg)
	require.Equal(t, b, encodeState("prod", 256, newState(msg.members).sorted()), "equal states must encode to equal bytes")
}

func TestDecodeRejects(t *testing.T) {
	valid := wireMember{Name: "a", Addr: "h:1", Gossip: "h:2", Status: "active", Version: 1}
	with := func(f func(*wireMember)) wireState {
		w := valid
		f(&w)
		return wireState{Format: formatVersion, Cluster: "c", Partitions: 8, Members: []wireMember{w}}
	}
	many := wireState{Format: formatVersion, Cluster: "c", Partitions: 8}
	for i := range maxMembers + 1 {
		w := valid
		w.Name = fmt.Sprintf("n%d", i)
		many.Members = append(many.Members, w)
	}
	for _, tc := range []struct {
		name string
		in   any
	}{
		{"unknown format", wireState{Format: 2, Cluster: "c", Partitions: 8}},
		{"empty name", with(func(w *wireMember) { w.Name = "" })},
		{"long name", with(func(w *wireMember) { w.Name = strings.Repeat("n", maxNameLen+1) })},
		{"invalid utf-8 name", with(func(w *wireMember) { w.Name = "\xff" })},
		{"address without port", with(func(w *wireMember) { w.Addr = "host" })},
		{"long gossip address", with(func(w *wireMember) { w.Gossip = strings.Repeat("h", maxAddrLen) + ":1" })},
		{"unknown status", with(func(w *wireMember) { w.Status = "zombie" })},
		{"version 0", with(func(w *wireMember) { w.Version = 0 })},
		{"have bitset longer than the partitions", with(func(w *wireMember) { w.HaveFor, w.Have = 1, []byte{1, 2} })},
		{"duplicate member", wireState{Format: formatVersion, Cluster: "c", Partitions: 8, Members: []wireMember{valid, valid}}},
		{"too many members", many},
		{"wrong types", map[string]any{"f": "one", "m": 3}},
		{"not a map", []int{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := msgpack.Marshal(tc.in)
			require.NoError(t, err)
			_, err = decodeState(b)
			require.ErrorIs(t, err, errMalformedState)
		})
	}
	t.Run("hostile bytes", func(t *testing.T) {
		for _, b := range [][]byte{
			nil,
			{0xc1},                         // never-used code
			{0xdb, 0xff, 0xff, 0xff, 0xff}, // a 4 GiB string in 5 bytes
			{0xdf, 0x7f, 0xff, 0xff, 0xff}, // a map of 2^31 entries
			{0x81, 0xa1, 'm', 0xdd, 0xff, 0xff, 0xff, 0xff}, // members: array of 2^32
			make([]byte, maxStateBytes+1),
		} {
			_, err := decodeState(b)
			require.ErrorIs(t, err, errMalformedState, "%x", b[:min(len(b), 16)])
		}
	})
}

func TestHolds(t *testing.T) {
	e := entry("a", StatusJoining, 1)
	e.HaveFor, e.Have = 9, "\x05\x80"
	for p, want := range map[uint32]bool{0: true, 1: false, 2: true, 15: true, 14: false, 16: false, 1 << 20: false} {
		require.Equal(t, want, e.Holds(9, p), "partition %d", p)
	}
	require.False(t, e.Holds(8, 0), "a mark for another change means nothing")
}

func TestMetaRoundTrip(t *testing.T) {
	m := nodeMeta{Addr: "10.0.0.1:7101", RingVersion: 1 << 63, Next: 5}
	got, ok := decodeMeta(encodeMeta(m))
	require.True(t, ok)
	require.Equal(t, m, got)
	_, ok = decodeMeta([]byte{0xdb, 0xff, 0xff, 0xff, 0xff})
	require.False(t, ok)
}

func TestDialableDataAddr(t *testing.T) {
	for _, c := range []struct{ data, bind, advertise, want string }{
		{"127.0.0.1:7101", "127.0.0.1:7201", "", "127.0.0.1:7101"},
		{"0.0.0.0:7101", "127.0.0.1:7201", "", "127.0.0.1:7101"},
		{"[::]:7101", "10.0.0.5:7201", "", "10.0.0.5:7101"},
		{":7101", "0.0.0.0:7201", "192.168.1.9", "192.168.1.9:7101"},
		{"db1.example:7101", "0.0.0.0:7201", "10.1.1.1", "db1.example:7101"},
	} {
		m := &Membership{cfg: Config{DataAddr: c.data, BindAddr: c.bind, Advertise: c.advertise}}
		got, err := m.dialableDataAddr()
		if err != nil || got != c.want {
			t.Errorf("data %q bind %q advertise %q: got %q, %v; want %q", c.data, c.bind, c.advertise, got, err, c.want)
		}
	}
}
