package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bounds = []float64{0.001, 0.01, 0.1}

func reading(getN, getErr uint64, getBuckets []uint64, repaired uint64) Reading {
	return Reading{Ops: map[string]OpReading{"get": {Requests: getN, Errors: getErr, Buckets: getBuckets}, "put": {}}, Repaired: repaired}
}

func TestHistoryKeepsDeltasOldestFirst(t *testing.T) {
	h := NewHistory(3, bounds)
	t0 := time.Unix(1000, 0)
	h.Record(t0, reading(10, 1, []uint64{5, 8, 10, 10}, 4)) // baseline only
	require.Empty(t, h.Points())
	h.Record(t0.Add(time.Second), reading(15, 1, []uint64{6, 12, 15, 15}, 6))
	pts := h.Points()
	require.Len(t, pts, 1)
	require.Equal(t, OpPoint{Requests: 5, Errors: 0, Buckets: []uint64{1, 3, 1, 0}}, pts[0].Ops["get"])
	require.EqualValues(t, 2, pts[0].Repaired)
	for i := 2; i <= 5; i++ {
		h.Record(t0.Add(time.Duration(i)*time.Second), reading(15+uint64(i), 1, []uint64{6, 12, 15 + uint64(i), 15 + uint64(i)}, 6))
	}
	pts = h.Points()
	require.Len(t, pts, 3, "the ring keeps its size")
	for i, p := range pts {
		require.Equal(t, int64(1003+i)*1000, p.At, "oldest first")
	}
	// A counter that goes down (a bug, or a reset) is no change.
	h.Record(t0.Add(6*time.Second), reading(1, 0, []uint64{0, 0, 1, 1}, 0))
	last := h.Points()[2]
	require.Zero(t, last.Ops["get"].Requests)
	require.Zero(t, last.Repaired)
}

func TestSumAddsNodesPerSecondAndComputesP99(t *testing.T) {
	pt := func(sec int64, n uint64, b []uint64, repaired uint64) Point {
		return Point{At: sec*1000 + 300, Ops: map[string]OpPoint{"get": {Requests: n, Buckets: b}}, Repaired: repaired}
	}
	a := []Point{pt(100, 10, []uint64{10, 0, 0, 0}, 1), pt(101, 100, []uint64{0, 100, 0, 0}, 0)}
	b := []Point{pt(101, 1, []uint64{0, 0, 0, 1}, 5)}
	s := Sum(bounds, [][]Point{a, b}, 3)
	require.Equal(t, []int64{99000, 100000, 101000}, s.T)
	require.Equal(t, []uint64{0, 10, 101}, s.Ops["get"].Rate)
	require.Equal(t, []uint64{0, 0, 0}, s.Ops["put"].Rate)
	require.Nil(t, s.Ops["get"].P99Ms[0], "no requests, no percentile")
	require.InDelta(t, 0.99, *s.Ops["get"].P99Ms[1], 1e-9, "inside the first bucket, interpolated")
	// 111 requests in the window: rank 109.89 falls in the 1-10 ms bucket.
	require.Greater(t, *s.Ops["get"].P99Ms[2], 1.0)
	require.LessOrEqual(t, *s.Ops["get"].P99Ms[2], 10.0)
	require.Equal(t, []uint64{0, 1, 6}, s.RepairsPerMin)

	empty := Sum(bounds, nil, 3)
	require.Empty(t, empty.T)
	require.NotNil(t, empty.Ops["get"].Rate, "empty series encode as [], not null")
}

func TestQuantilePastTheLastBound(t *testing.T) {
	v := quantileMs(bounds, []uint64{0, 0, 0, 5}, 0.99)
	require.NotNil(t, v)
	require.Equal(t, 100.0, *v, "latencies past every bound are reported as the last bound")
}

func TestReadTakesTheNodesMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: requestsMetric}, []string{"type", "result"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: latencyMetric, Buckets: bounds}, []string{"type"})
	reg.MustRegister(reqs, lat, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: repairedMetric}, func() float64 { return 7 }))
	reqs.WithLabelValues("get", "ok").Add(5)
	reqs.WithLabelValues("get", "not_found").Add(2)
	reqs.WithLabelValues("get", "timeout").Add(1)
	reqs.WithLabelValues("put", "quorum").Add(3)
	reqs.WithLabelValues("replica_put", "ok").Add(100)
	lat.WithLabelValues("get").Observe(0.005)
	lat.WithLabelValues("get").Observe(5)
	r, err := Read(reg)
	require.NoError(t, err)
	require.Equal(t, OpReading{Requests: 8, Errors: 1, Buckets: []uint64{0, 1, 1, 2}}, r.Ops["get"])
	require.EqualValues(t, 3, r.Ops["put"].Errors)
	require.NotContains(t, r.Ops, "replica_put")
	require.EqualValues(t, 7, r.Repaired)
}

func TestKeyReportNamesTheReplicasThatDiffer(t *testing.T) {
	sib := func(actor string, c uint64, v string) dvv.Sibling {
		return dvv.Sibling{Dot: dvv.Dot{Actor: actor, Counter: c}, Value: []byte(v)}
	}
	two := dvv.Object{Siblings: []dvv.Sibling{sib("a", 1, "x"), sib("a", 2, "y")}, VV: dvv.VV{"a": 2}}
	one := dvv.Object{Siblings: []dvv.Sibling{sib("a", 1, "x")}, VV: dvv.VV{"a": 1}}
	resp := wire.DebugReplicasResp{Partition: 7, Replicas: []wire.ReplicaCopy{
		{Node: "n1", Primary: true, Found: true, Object: two},
		{Node: "n2", Primary: true, Found: true, Object: one},
		{Node: "n3", Primary: true, Found: true, Object: two},
		{Node: "n4", Found: true, Object: dvv.Object{Siblings: []dvv.Sibling{{Dot: dvv.Dot{Actor: "b", Counter: 1}, Value: []byte{0xff, 0}}}, VV: dvv.VV{"b": 1}}},
	}}
	k := keyReport("b", "k", resp)
	require.Equal(t, []string{"n2", "n4"}, k.Differing)
	require.Len(t, k.Replicas[0].Siblings, 2)
	require.Equal(t, "base64", k.Replicas[3].Siblings[0].ValueEncoding)
	require.Equal(t, "/wA=", k.Replicas[3].Siblings[0].Value)

	same := keyReport("b", "k", wire.DebugReplicasResp{Replicas: []wire.ReplicaCopy{
		{Node: "n1", Primary: true, Found: true, Object: two}, {Node: "n2", Primary: true, Found: true, Object: two}}})
	require.Empty(t, same.Differing)
	require.NotNil(t, same.Differing)
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	err := Config{}.Validate()
	require.Error(t, err)
	for _, want := range []string{"peer timeout", "max report bytes", "window"} {
		require.Contains(t, err.Error(), want)
	}
}

// peerConsole is a console whose one peer, "p", is the given HTTP server.
func peerConsole(t *testing.T, cfg Config, peer *httptest.Server) *Console {
	t.Helper()
	c, err := New(cfg, Deps{
		Name:      "self",
		Self:      func(context.Context) NodeReport { return NodeReport{Node: "self", Sees: map[string]bool{}} },
		Members:   func() []Member { return []Member{{Name: "self", Alive: true}, {Name: "p", Alive: true}} },
		Ring:      func() Ring { return Ring{Partitions: 4, N: 2, Owned: map[string]int{"self": 2, "p": 2}} },
		AdminAddr: func(context.Context, string) (string, error) { return strings.TrimPrefix(peer.URL, "http://"), nil },
		Replicas: func(context.Context, string, []byte) (wire.DebugReplicasResp, error) {
			return wire.DebugReplicasResp{}, nil
		},
		History: NewHistory(10, bounds),
	})
	require.NoError(t, err)
	return c
}

func TestAPeerThatMisbehavesIsNamedNotWaitedFor(t *testing.T) {
	cases := map[string]struct {
		handler func(w http.ResponseWriter, r *http.Request)
		want    string
	}{
		"silent": {func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "no answer within"},
		"huge": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"node":"p","build":"%s"}`, strings.Repeat("x", 4096))
		}, "larger than"},
		"impostor":  {func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"node":"q"}`) }, `answered as "q"`},
		"malformed": {func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"node":`) }, "malformed report"},
		"error":     {func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }, "403"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			peer := httptest.NewServer(http.HandlerFunc(tc.handler))
			defer peer.Close()
			cfg := DefaultConfig()
			cfg.PeerTimeout = 300 * time.Millisecond
			cfg.MaxReportBytes = 1024
			c := peerConsole(t, cfg, peer)
			rep := c.cluster(t.Context())
			require.Contains(t, rep.Unanswered["p"], tc.want)
			require.True(t, rep.Members[0].Answered)
			require.False(t, rep.Members[1].Answered)
			require.Equal(t, rep.Unanswered["p"], rep.Members[1].Error)
		})
	}
}

func TestHandlerServesReadsOnly(t *testing.T) {
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"node":"p","uptime_ms":5,"hints":[{"owner":"self","pending":3,"oldest_ms":900}],"aae":{"enabled":true,"grid":"srn."}}`)
	}))
	defer peer.Close()
	srv := httptest.NewServer(peerConsole(t, DefaultConfig(), peer).Handler())
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/v1/cluster", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	for _, path := range []string{"/", "/assets/console.js", "/assets/console.css"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	resp, err = http.Get(srv.URL + "/api/v1/key?bucket=b")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a key is required")

	resp, err = http.Get(srv.URL + "/api/v1/cluster")
	require.NoError(t, err)
	defer resp.Body.Close()
	var rep ClusterReport
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	require.Equal(t, 3, rep.Hints.Pending)
	require.Equal(t, []OwnerHints{{Owner: "self", Pending: 3, OldestMs: 900}}, rep.Hints.Owners)
	require.Equal(t, "srn.", rep.AAE.Grid)
	require.Equal(t, map[string]int{"in_sync": 1, "repairing": 1, "never_exchanged": 1, "unreplicated": 1}, rep.AAE.Counts)
	require.Empty(t, rep.Unanswered)
}

func TestCombinedGridShowsTheMostPressingState(t *testing.T) {
	reports := map[string]*NodeReport{
		"a": {AAE: AAEReport{Enabled: true, Grid: "sn.rn"}},
		"b": {AAE: AAEReport{Enabled: true, Grid: "nsdd."}},
		"c": {AAE: AAEReport{Enabled: false}},
	}
	got := combineAAE(reports, 6)
	require.Equal(t, "ssdrn.", got.Grid, "an exchange one replica started counts for the partition")
	require.Equal(t, map[string]int{"in_sync": 2, "diverged": 1, "repairing": 1, "never_exchanged": 1, "unreplicated": 1}, got.Counts)
}
