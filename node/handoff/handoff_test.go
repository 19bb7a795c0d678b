package handoff

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type nobody struct{}

func (nobody) Up(string) bool                   { return false }
func (nobody) Removed(string) bool              { return false }
func (nobody) Ring() *ring.Ring                 { return nil }
func (nobody) ReplicationFactor(*ring.Ring) int { return 0 }
func (nobody) Call(context.Context, string, wire.Type, any, any) error {
	return errors.New("no peers in this test")
}

// TestServeHandoffPacesTheOwner: the owner applies a batch from a peer,
// refuses a bad one whole, and refuses a batch its bucket cannot take yet
// with the time to wait, inviting a next batch no smaller than the
// minimum credit.
func TestServeHandoffPacesTheOwner(t *testing.T) {
	s, err := store.Open(store.DefaultOptions(t.TempDir(), "n1"))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Unix(1000, 0)
	cfg := DefaultConfig()
	cfg.BatchBytes, cfg.ReceiveBytesPerSecond, cfg.ReceiveBurstBytes = 400, 1000, 500
	h, err := New(cfg, Deps{Name: "n1", Store: s, Peers: nobody{}, Members: nobody{},
		CheckKey: func(p uint32, _ string, key []byte) error {
			if string(key) == "bad" {
				return cairn.InvalidArgument("bad key")
			}
			return nil
		},
		Now: func() time.Time { return now }})
	require.NoError(t, err)
	item := func(key string, size int) wire.HandoffItem {
		return wire.HandoffItem{Partition: 1, Bucket: "b", Key: []byte(key),
			Object: mustUpdate(dvv.Object{}.Update(nil, "n2.h", make([]byte, size), false, 1))}
	}
	peer := transport.Peer{Node: "n2"}

	_, err = h.ServeHandoff(t.Context(), transport.Peer{}, wire.HandoffReq{Items: []wire.HandoffItem{item("k1", 10)}})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument, "a client is not a peer")
	_, err = h.ServeHandoff(t.Context(), peer, wire.HandoffReq{Items: []wire.HandoffItem{item("k1", 10), item("bad", 10)}})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	_, found, err := s.Get(1, "b", []byte("k1"))
	require.NoError(t, err)
	require.False(t, found, "a batch with one bad item changes nothing")

	resp, err := h.ServeHandoff(t.Context(), peer, wire.HandoffReq{Items: []wire.HandoffItem{item("k1", 297)}})
	require.NoError(t, err)
	require.True(t, resp.Accepted)
	require.Equal(t, 1, resp.Applied)
	require.Equal(t, int64(200), resp.CreditBytes, "what the bucket holds after 300 of 500 bytes")
	_, found, err = s.Get(1, "b", []byte("k1"))
	require.NoError(t, err)
	require.True(t, found)

	resp, err = h.ServeHandoff(t.Context(), peer, wire.HandoffReq{Items: []wire.HandoffItem{item("k2", 297)}})
	require.NoError(t, err)
	require.False(t, resp.Accepted, "300 bytes do not fit the 200 left")
	require.Equal(t, uint32(100), resp.RetryAfterMs, "100 bytes at 1000 a second")
	require.Equal(t, int64(200), resp.CreditBytes)

	now = now.Add(100 * time.Millisecond)
	resp, err = h.ServeHandoff(t.Context(), peer, wire.HandoffReq{Items: []wire.HandoffItem{item("k2", 297)}})
	require.NoError(t, err)
	require.True(t, resp.Accepted)
	require.Equal(t, cfg.minCredit(), resp.CreditBytes, "never less than the minimum credit")

	hs, err := h.ServeHints(t.Context(), peer, wire.HintsReq{})
	require.NoError(t, err)
	require.Equal(t, "n1", hs.Node)
	require.Empty(t, hs.Owners)
}

func TestNewReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBatchBytes = 1
	_, err := New(cfg, Deps{})
	require.ErrorContains(t, err, "a node name is required")
	require.ErrorContains(t, err, "store, peers, members and key check are required")
	require.ErrorContains(t, err, "batch_bytes must be positive and at most max_batch_bytes")
}

// mustUpdate takes dvv's Update in a history whose counters cannot come
// near the end of their range, so an error is a bug in the test.
func mustUpdate(o dvv.Object, err error) dvv.Object {
	if err != nil {
		panic(err)
	}
	return o
}
