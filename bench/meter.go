package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/cairnkv/cairn/client"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The counters a node's /metrics exports that the cost is read from.
const (
	metricCPU           = "process_cpu_seconds_total"
	metricBytesSent     = "cairn_transport_bytes_sent_total"
	metricBytesReceived = "cairn_transport_bytes_received_total"
)

// maxMetricsBody bounds what is read of one /metrics answer (a node's is
// some tens of kilobytes).
const maxMetricsBody = 8 << 20

// AdminMeter reads every node's counters from its admin HTTP port
// (/metrics). Unless Admin names the ports, it learns them from the
// cluster on its first reading: the members from a seed, and each
// member's admin address from that member's own status answer, so only
// data addresses need be known.
type AdminMeter struct {
	// Seeds are data addresses to learn the members from.
	Seeds []string
	// Cluster is the cluster name of the data port's handshake.
	Cluster string
	// TLS is the data port's client TLS configuration, nil for plain TCP;
	// the admin ports are then read over https with it.
	TLS *tls.Config
	// Admin, when set, names the admin addresses (host:port) to read, and
	// nothing is learnt from the cluster.
	Admin []string
	// Token is an admin user's token, which a secure node's admin port
	// wants for /metrics; empty sends none.
	Token string

	once  sync.Once
	nodes []adminNode
	err   error
}

type adminNode struct {
	name, admin string
}

// Read reads every node at once, so that the readings are close in time.
func (m *AdminMeter) Read(ctx context.Context) ([]NodeCounters, error) {
	m.once.Do(func() { m.nodes, m.err = m.discover(ctx) })
	if m.err != nil {
		return nil, m.err
	}
	out := make([]NodeCounters, len(m.nodes))
	errs := make([]error, len(m.nodes))
	// One connection per reading: nothing idle is left behind.
	tr := &http.Transport{DisableKeepAlives: true}
	scheme := "http://"
	if m.TLS != nil {
		// A secure node serves /metrics over TLS only, with its node
		// certificate, which the data port's configuration verifies.
		tr.TLSClientConfig, scheme = m.TLS.Clone(), "https://"
	}
	hc := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for i, n := range m.nodes {
		wg.Go(func() {
			out[i], errs[i] = scrape(ctx, hc, scheme, n, m.Token)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// discover lists the members and asks each for its admin address.
func (m *AdminMeter) discover(ctx context.Context) ([]adminNode, error) {
	if len(m.Admin) > 0 {
		var nodes []adminNode
		for _, a := range m.Admin {
			nodes = append(nodes, adminNode{name: a, admin: a})
		}
		return nodes, nil
	}
	c, err := client.New(ctx, client.Config{Seeds: m.Seeds, Cluster: m.Cluster, TLS: m.TLS, Routing: client.SeedsOnly})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	members, err := c.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the members: %w", err)
	}
	var nodes []adminNode
	for _, mem := range members {
		if mem.Status == "removed" {
			continue
		}
		if !mem.Alive {
			return nil, fmt.Errorf("%s is down, so its counters cannot be read", mem.Name)
		}
		admin, err := m.askAdmin(ctx, mem.Addr)
		if err != nil {
			return nil, fmt.Errorf("ask %s (%s) for its admin address: %w", mem.Name, mem.Addr, err)
		}
		if admin == "" {
			return nil, fmt.Errorf("%s serves no admin HTTP port, so its counters cannot be read", mem.Name)
		}
		nodes = append(nodes, adminNode{name: mem.Name, admin: admin})
	}
	if len(nodes) == 0 {
		return nil, errors.New("the cluster lists no member")
	}
	return nodes, nil
}

// askAdmin asks the node at data address addr for its admin address, and
// makes it one to connect to.
func (m *AdminMeter) askAdmin(ctx context.Context, addr string) (string, error) {
	c, err := client.New(ctx, client.Config{Seeds: []string{addr}, Cluster: m.Cluster, TLS: m.TLS, Routing: client.SeedsOnly})
	if err != nil {
		return "", err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	return reachableAdmin(st.Admin, addr), nil
}

// reachableAdmin turns the address a node bound its admin port to into one
// to connect to: a node bound to every interface (0.0.0.0:7301, [::]:7301)
// is reached at the host of its data address.
func reachableAdmin(bound, dataAddr string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if dataHost, _, err := net.SplitHostPort(dataAddr); err == nil {
			return net.JoinHostPort(dataHost, port)
		}
	}
	return bound
}

// scrape reads one node's /metrics.
func scrape(ctx context.Context, hc *http.Client, scheme string, n adminNode, token string) (NodeCounters, error) {
	nc := NodeCounters{Node: n.name, Admin: n.admin}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+n.admin+"/metrics", nil)
	if err != nil {
		return nc, fmt.Errorf("%s: %w", n.name, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nc, fmt.Errorf("%s: %w", n.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nc, fmt.Errorf("%s: GET /metrics on %s: %s", n.name, n.admin, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nc, fmt.Errorf("%s: /metrics on %s: %w", n.name, n.admin, err)
	}
	sum := func(name string) (float64, bool) {
		f, ok := families[name]
		if !ok {
			return 0, false
		}
		var v float64
		for _, m := range f.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
		}
		return v, true
	}
	nc.CPUSeconds, nc.HasCPU = sum(metricCPU)
	var hasSent, hasReceived bool
	nc.BytesSent, hasSent = sum(metricBytesSent)
	nc.BytesReceived, hasReceived = sum(metricBytesReceived)
	nc.HasBytes = hasSent && hasReceived
	return nc, nil
}
