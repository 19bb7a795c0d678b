package node

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/client"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// counterValue reads a counter's current value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// registryValue sums the samples of one counter or gauge on n's registry
// (0 when none is there yet).
func registryValue(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	families, err := n.metrics.registry.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestStatusNamesTheAdminPortThatCountsTraffic follows what `cairn bench`
// does to learn a request's cost: ask a node's status for its admin
// address, and read the transport's byte counters there.
func TestStatusNamesTheAdminPortThatCountsTraffic(t *testing.T) {
	tc := startCluster(t, 2, func(c *Config) { c.Admin = "127.0.0.1:0" })
	n1 := tc.nodes["n1"]
	c, err := client.New(t.Context(), client.Config{Seeds: []string{n1.Addr()}, Routing: client.SeedsOnly})
	require.NoError(t, err)
	defer c.Close()
	st, err := c.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, n1.AdminAddr(), st.Admin)

	before := scrapeTraffic(t, st.Admin)
	// Through n1 only: it coordinates, and replicates to n2 over its pool.
	for i := range 20 {
		_, err := c.Put(t.Context(), "b", []byte{byte(i)}, make([]byte, 100))
		require.NoError(t, err)
	}
	after := scrapeTraffic(t, st.Admin)
	for _, series := range []string{
		`cairn_transport_bytes_sent_total{side="server"}`, `cairn_transport_bytes_received_total{side="server"}`,
		`cairn_transport_bytes_sent_total{side="client"}`, `cairn_transport_bytes_received_total{side="client"}`,
	} {
		require.Contains(t, after, series)
		// Each put carried a 100-byte value in and out of n1.
		if strings.Contains(series, "received_total{side=\"server\"}") || strings.Contains(series, "sent_total{side=\"client\"}") {
			require.GreaterOrEqual(t, after[series]-before[series], 20*100.0, series)
		} else {
			require.Greater(t, after[series], before[series], series)
		}
	}
	require.Contains(t, after, "process_cpu_seconds_total")

	// A node without an admin port says so by an empty address.
	noAdmin := startCluster(t, 1, nil).nodes["n1"]
	c2, err := client.New(t.Context(), client.Config{Seeds: []string{noAdmin.Addr()}, Routing: client.SeedsOnly})
	require.NoError(t, err)
	defer c2.Close()
	st, err = c2.Status(t.Context())
	require.NoError(t, err)
	require.Empty(t, st.Admin)
}

// scrapeTraffic reads every sample of the transport and process CPU
// counters from a node's /metrics, keyed by name and labels as exposed.
func scrapeTraffic(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+admin+"/metrics", nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, "cairn_transport_bytes_") && !strings.HasPrefix(line, "process_cpu_seconds_total") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}
