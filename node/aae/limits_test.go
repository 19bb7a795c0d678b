package aae

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

// sendable encodes a message as a frame and reads it back as a receiver
// does: an error is what would have closed the connection.
func sendable(t wire.Type, v any) error {
	frame, err := wire.AppendFrame(nil, 1, t, v, wire.DefaultMaxFrame)
	if err != nil {
		return err
	}
	f, err := wire.ParseFrame(frame[4:])
	if err != nil {
		return err
	}
	return f.CheckBody()
}

// manySiblings is what a key holds after 100 writes without a context.
func manySiblings() dvv.Object {
	var o dvv.Object
	for i := range 100 {
		o = mustUpdate(o.Update(nil, "n1.0123456789abcdef", fmt.Appendf(nil, "value%03d", i), false, int64(i+1)))
	}
	return o
}

// keysInPartition stores obj under n keys of partition p, named from
// prefix, and returns them.
func keysInPartition(t *testing.T, s *store.Store, r *ring.Ring, p uint32, prefix string, n int, obj dvv.Object) []antientropy.KeyVersion {
	var keys []antientropy.KeyVersion
	for i := 0; len(keys) < n; i++ {
		k := fmt.Appendf(nil, "%s%d", prefix, i)
		if r.KeyPartition("b", k) != p {
			continue
		}
		_, err := s.Modify(p, "b", k, false, func(dvv.Object, bool) (dvv.Object, bool, error) { return obj, true, nil })
		require.NoError(t, err)
		keys = append(keys, antientropy.KeyVersion{Bucket: "b", Key: k, Version: antientropy.Version(obj)})
	}
	return keys
}

// pushRecorder is a peer that takes pushes, checking each as a receiver
// would.
type pushRecorder struct {
	t      *testing.T
	pushes []int
}

func (p *pushRecorder) Call(_ context.Context, _ string, typ wire.Type, req, _ any) error {
	require.Equal(p.t, wire.TypeAAEPush, typ)
	require.NoError(p.t, sendable(typ, req), "a receiver reads every push")
	p.pushes = append(p.pushes, len(req.(wire.AAEPushReq).Objects))
	return nil
}

// Objects with many siblings reach a message's element limit (65,533)
// long before a batch's bytes: 60 of 100 siblings are 80,000 elements in
// 330 KiB. Fetch answers and pushes stop at the element limit, and an
// object too large for any message is left out rather than sent.
func TestRepairBatchesStayWithinTheElementLimit(t *testing.T) {
	s, trees, r := openWithData(t, 0)
	cfg := DefaultConfig()
	cfg.BatchKeys, cfg.BatchBytes = 1024, 16<<20 // only the element limit can split
	const p = 3
	keys := keysInPartition(t, s, r, p, "many", 60, manySiblings())
	storm := dvv.Object{VV: dvv.VV{"n1.0123456789abcdef": 6000}}
	for i := range 6000 {
		storm.Siblings = append(storm.Siblings, dvv.Sibling{Dot: dvv.Dot{Actor: "n1.0123456789abcdef", Counter: uint64(i + 1)}})
	}
	require.Greater(t, wire.ObjectItemElements(storm), wire.MaxBodyElements())
	huge := keysInPartition(t, s, r, p, "storm", 1, storm)[0]

	peer := &pushRecorder{t: t}
	a, err := New(cfg, Deps{Name: "n1", Store: s, Peers: peer, Members: alone{r}, Trees: trees,
		CheckKey: func(uint32, string, []byte) error { return nil }})
	require.NoError(t, err)

	// Serving a fetch of every key takes several answers, each readable.
	var refs []wire.AAEKeyRef
	for _, k := range append([]antientropy.KeyVersion{huge}, keys...) {
		refs = append(refs, wire.AAEKeyRef{Bucket: k.Bucket, Key: k.Key})
	}
	got, answers := 0, 0
	for len(refs) > 0 {
		resp, err := a.ServeFetch(t.Context(), transport.Peer{Node: "n2"}, wire.AAEFetchReq{Partition: p, Keys: refs})
		require.NoError(t, err)
		require.NoError(t, sendable(wire.TypeAAEFetchResp, resp))
		require.Positive(t, resp.Answered)
		got += len(resp.Objects)
		refs = refs[resp.Answered:]
		answers++
	}
	require.Equal(t, 60, got, "every object that fits a message, and not the one that does not")
	require.GreaterOrEqual(t, answers, 2)

	// Pushing them (the peer lacks them all) takes several pushes too.
	var res Result
	require.NoError(t, a.repair(t.Context(), "n2", p, antientropy.Repair{MissingThere: append(keys, huge)}, &res))
	require.Equal(t, 60, res.Pushed)
	require.GreaterOrEqual(t, len(peer.pushes), 2, "%v", peer.pushes)
}
