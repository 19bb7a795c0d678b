package handoff

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// afterRemoval is the membership after an operator removed "gone": the
// ring of the members left, every one of them up unless listed down.
type afterRemoval struct {
	r    *ring.Ring
	down map[string]bool
}

func (m afterRemoval) Up(node string) bool              { return node != "gone" && !m.down[node] }
func (afterRemoval) Removed(node string) bool           { return node == "gone" }
func (m afterRemoval) Ring() *ring.Ring                 { return m.r }
func (afterRemoval) ReplicationFactor(r *ring.Ring) int { return min(3, len(r.Members())) }

// receivers are the other new owners: each call is recorded and its items
// kept, as an owner that accepted them would; fail refuses a node's calls.
type receivers struct {
	mu   sync.Mutex
	got  map[string]map[string]dvv.Object // node -> key -> object
	fail string
}

func (p *receivers) Call(_ context.Context, node string, typ wire.Type, req, resp any) error {
	if typ != wire.TypeHandoff {
		return fmt.Errorf("unexpected %v", typ)
	}
	if node == p.fail {
		return errors.New("connection refused")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got[node] == nil {
		p.got[node] = map[string]dvv.Object{}
	}
	items := req.(wire.HandoffReq).Items
	for _, it := range items {
		p.got[node][string(it.Key)] = dvv.Sync(p.got[node][string(it.Key)], it.Object)
	}
	*resp.(*wire.HandoffResp) = wire.HandoffResp{Accepted: true, Applied: len(items), CreditBytes: 1 << 20}
	return nil
}

// TestHintsOfARemovedOwnerGoToTheNewOwners: hints kept for a member that
// was removed go, as DVV syncs, to every current primary of their
// partition (this node's own copy included) and are marked delivered only
// once all of them acknowledged; while one new owner fails, none is.
func TestHintsOfARemovedOwnerGoToTheNewOwners(t *testing.T) {
	s, err := store.Open(store.DefaultOptions(t.TempDir(), "n1"))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	r, err := ring.New(16, []string{"n1", "n2", "n3", "n4"})
	require.NoError(t, err)
	members := afterRemoval{r: r, down: map[string]bool{}}
	peers := &receivers{got: map[string]map[string]dvv.Object{}}
	cfg := DefaultConfig()
	cfg.MaxBatchItems = 7 // several batches
	reg := prometheus.NewRegistry()
	h, err := New(cfg, Deps{Name: "n1", Store: s, Peers: peers, Members: members, Registry: reg,
		CheckKey: func(uint32, string, []byte) error { return nil }})
	require.NoError(t, err)

	// Keys of partitions whose new primaries include this node and of
	// partitions whose do not.
	want := map[string]dvv.Object{}
	owners := map[string][]string{}
	for i := range 40 {
		k := fmt.Appendf(nil, "k%d", i)
		p := r.KeyPartition("b", k)
		obj := mustUpdate(dvv.Object{}.Update(nil, "n9.x", fmt.Appendf(nil, "v%d", i), false, 1))
		_, err := s.ModifyHint(store.HintRef{Owner: "gone", Partition: p, Bucket: "b", Key: k}, false, 1,
			func(dvv.Object, bool) (dvv.Object, bool, error) { return obj, true, nil })
		require.NoError(t, err)
		want[string(k)] = obj
		owners[string(k)], _ = r.Preference(p, 3)
	}
	require.Equal(t, 40, s.HintStats()["gone"].Pending)
	var local, remote bool
	for _, o := range owners {
		local = local || slices.Contains(o, "n1")
		remote = remote || !slices.Contains(o, "n1")
	}
	require.True(t, local && remote, "some keys have this node as a new owner and some do not")

	// One new owner down: nothing is marked delivered.
	members.down["n3"] = true
	res := h.round(t.Context(), "gone")
	require.ErrorContains(t, res.err, "n3")
	require.Equal(t, 40, s.HintStats()["gone"].Pending)
	delete(members.down, "n3")
	peers.fail = "n2"
	res = h.round(t.Context(), "gone")
	require.ErrorContains(t, res.err, "connection refused")
	require.Equal(t, 40, s.HintStats()["gone"].Pending)

	peers.fail = ""
	res = h.round(t.Context(), "gone")
	require.NoError(t, res.err)
	require.Equal(t, 40, res.delivered)
	require.Equal(t, 0, s.HintStats()["gone"].Pending)
	for k, obj := range want {
		for _, o := range owners[k] {
			var got dvv.Object
			if o == "n1" {
				p := r.KeyPartition("b", []byte(k))
				var found bool
				got, found, err = s.Get(p, "b", []byte(k))
				require.NoError(t, err)
				require.True(t, found, "%s on this node", k)
			} else {
				got = peers.got[o][k]
			}
			require.True(t, got.Equal(obj), "%s holds %s", o, k)
		}
		for n := range peers.got {
			if !slices.Contains(owners[k], n) {
				_, sent := peers.got[n][k]
				require.False(t, sent, "%s is not a new owner of %s", n, k)
			}
		}
	}
	_, sent := peers.got["gone"]
	require.False(t, sent, "nothing goes to the removed member")
	require.Equal(t, 40.0, counterValue(t, reg, "cairn_hints_retargeted_total"))
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
