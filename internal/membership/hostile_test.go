package membership

import (
	"bytes"
	"context"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"
)

// Remote bytes reach the delegate from any peer of the cluster, or from
// anyone who can send a packet with the right label. None of them may panic
// the node or change its state unless they are well-formed state of this
// cluster.
func TestHostileStateIsDropped(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := bareCluster(t)
	m, err := Start(context.Background(), c.config("n1", "127.0.0.1:0", nil))
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Shutdown()) }()
	d := &delegate{m}

	peer := Member{Name: "n2", Addr: "127.0.0.1:12", Gossip: "127.0.0.1:22", Status: StatusActive, Version: 1}
	huge := []byte{0x81, 0xa1, 'm', 0xdd, 0x7f, 0xff, 0xff, 0xff} // members: an array of 2^31
	wrongFormat, err := msgpack.Marshal(wireState{Format: 9, Cluster: "test", Partitions: 64})
	require.NoError(t, err)
	hostile := map[string][]byte{
		"empty":            nil,
		"garbage":          []byte("\x00\x01not msgpack at all\xff"),
		"huge string":      {0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},
		"huge members":     huge,
		"truncated":        encodeState("test", 64, []Member{peer})[:20],
		"wrong cluster":    encodeState("other", 64, []Member{peer}),
		"wrong partitions": encodeState("test", 128, []Member{peer}),
		"wrong format":     wrongFormat,
		"invalid member":   encodeState("test", 64, []Member{{Name: "n2", Addr: "nope", Gossip: "127.0.0.1:22", Status: StatusActive, Version: 1}}),
		"unknown status":   encodeState("test", 64, []Member{{Name: "n2", Addr: "127.0.0.1:12", Gossip: "127.0.0.1:22", Status: "boss", Version: 1}}),
		"trailing bytes":   append(encodeState("test", 64, []Member{peer}), 0xc0),
		"invalid metadata": encodeState("test", 64, []Member{peer}, MetaEntry{Prefix: "Bad", Key: "a", Version: MetaVersion{Time: 1, Node: "n2"}}),
		"foreign removal":  encodeState("other", 64, []Member{{Name: "n1", Addr: "127.0.0.1:11", Gossip: "127.0.0.1:21", Status: StatusRemoved, Version: 99}}),
	}

	before, state := m.Members(), d.LocalState(false)
	ringBefore := m.Ring()
	for name, b := range hostile {
		d.NotifyMsg(b)
		d.MergeRemoteState(b, false)
		d.MergeRemoteState(b, true)
		require.Equal(t, before, m.Members(), name)
		require.Equal(t, state, d.LocalState(false), name)
		require.Same(t, ringBefore, m.Ring(), name)
	}
	require.Equal(t, uint64(3*len(hostile)), m.Stats().DroppedMessages)

	// Hostile meta in memberlist's node events is ignored too; the peer is
	// alive, it just advertises no ring version.
	d.NotifyJoin(&memberlist.Node{Name: "n9", Addr: []byte{127, 0, 0, 1}, Port: 9, Meta: []byte{0xdb, 0xff, 0xff, 0xff, 0xff}})
	require.True(t, m.Alive("n9"))
	d.NotifyLeave(&memberlist.Node{Name: "n9", Addr: []byte{127, 0, 0, 1}, Port: 9})
	require.False(t, m.Alive("n9"))

	// The same path takes well-formed state: the test above could not pass
	// by dropping everything.
	d.NotifyMsg(encodeState("test", 64, []Member{peer}))
	require.Len(t, m.Members(), 2)
	require.Equal(t, []string{"n1", "n2"}, m.Ring().Members())
	require.Equal(t, uint64(3*len(hostile)), m.Stats().DroppedMessages)

	// A peer's claim about this node is corrected, not adopted.
	self := m.Members()[0]
	lie := self
	lie.Status, lie.Addr, lie.Version = StatusLeaving, "127.0.0.1:666", self.Version+5
	d.MergeRemoteState(encodeState("test", 64, []Member{lie}), false)
	got := m.Members()[0]
	require.Equal(t, self.Addr, got.Addr)
	require.Equal(t, StatusActive, got.Status)
	require.Equal(t, lie.Version+1, got.Version)
	require.Equal(t, uint64(1), m.Stats().Reasserts)
	require.True(t, bytes.Contains(d.LocalState(false), []byte(self.Addr)))
}
