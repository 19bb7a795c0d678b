package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/console"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// historySize is how many seconds of its own request figures a node keeps
// for the console's charts.
const historySize = 300

// newAdminServer serves /metrics, /healthz (the process is up), /readyz (the
// node accepts requests), pprof and the web console (/ and /api/v1/), on a
// mux of its own so nothing registered on http.DefaultServeMux leaks in. It
// starts sampling the history the console charts, as background work that
// Shutdown stops.
//
// Every route is served through the one handler the server is given (the
// mux), which guardAdmin wraps: with security on, everything but /healthz
// and /readyz wants an admin user's token (adminauth.go).
func (n *Node) newAdminServer() *http.Server {
	con := n.newConsole()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	consoleRoutes := con.Handler()
	mux.Handle("/", consoleRoutes)
	return &http.Server{
		Handler:           n.guardAdmin(mux),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
}

// adminClientTLS is how this node reaches the other members' admin ports
// when security is on (they want TLS and present node certificates); nil
// when it is off.
func (n *Node) adminClientTLS() *tls.Config {
	if n.tls == nil {
		return nil
	}
	return n.tls.ClientTemplate()
}

// newConsole builds the web console over this node, and starts sampling
// its history. It cannot fail but by a programming error (a collector
// registered twice, an invalid default configuration), which tests catch:
// it panics then, at start, never later.
func (n *Node) newConsole() *console.Console {
	history := console.NewHistory(historySize, latencyBuckets)
	// The history reads a registry of its own, holding only what it
	// charts, so a sample a second costs no pebble or runtime metrics.
	charted := prometheus.NewRegistry()
	charted.MustRegister(n.metrics.requests, n.metrics.latency,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cairn_aae_keys_repaired_total", Help: "Keys anti-entropy repaired."},
			func() float64 { return float64(n.aae.Repaired()) }))
	con, err := console.New(console.DefaultConfig(), console.Deps{
		Name:      n.cfg.Name,
		Self:      n.consoleReport,
		Members:   n.consoleMembers,
		Ring:      n.consoleRing,
		AdminAddr: n.peerAdminAddr,
		TLS:       n.adminClientTLS(),
		Replicas: func(ctx context.Context, bucket string, key []byte) (wire.DebugReplicasResp, error) {
			return n.serveDebugReplicas(ctx, transport.Peer{}, wire.DebugReplicasReq{Bucket: bucket, Key: key})
		},
		History: history,
		Now:     n.now,
	})
	if err != nil {
		panic(fmt.Sprintf("console: %v", err))
	}
	n.background(func() {
		console.Sample(n.lifetime, history, time.Second, func() (console.Reading, error) { return console.Read(charted) }, n.now)
	})
	return con
}

// consoleReport is this node's account of itself for the console.
func (n *Node) consoleReport(ctx context.Context) console.NodeReport {
	st := n.serveStatus()
	rep := console.NodeReport{Node: st.Node, Addr: st.Addr, Admin: st.Admin, Cluster: st.Cluster, Build: buildVersion(),
		UptimeMs: st.UptimeMs, RingVersion: st.RingVersion, DiskBytes: st.DiskBytes, Sees: map[string]bool{}, Hints: []console.HintQueue{}}
	for _, m := range n.members.Members() {
		rep.Sees[m.Name] = n.members.Alive(m.Name)
	}
	if hints, err := n.handoff.ServeHints(ctx, transport.Peer{}, wire.HintsReq{}); err == nil {
		for _, o := range hints.Owners {
			rep.Hints = append(rep.Hints, console.HintQueue{Owner: o.Owner, Pending: o.Pending, Delivered: o.Delivered, Bytes: o.Bytes,
				OldestMs: o.BacklogMs, Delivering: o.Delivering, Failures: o.Failures})
		}
	}
	if a, err := n.aae.ServeStatus(ctx, transport.Peer{}, wire.AAEStatusReq{}); err == nil {
		rep.AAE = console.AAEReport{Enabled: a.Enabled, Partitions: a.Partitions, InSync: a.InSync, NeverExchanged: a.NeverExchanged,
			Running: a.Running, Exchanges: a.Exchanges, Failures: a.Failures, KeysRepaired: a.KeysFetched + a.KeysPushed, Grid: string(n.aae.Grid())}
	}
	if t, err := n.transfer.ServeTransfers(ctx, transport.Peer{}, wire.TransfersReq{Local: true}); err == nil {
		rep.Transfers = console.TransferReport{Changing: t.Changing, Members: t.Members, Next: t.Next,
			Flipped: t.Flipped, Moving: t.Moving, Streams: make([]console.TransferStream, len(t.Transfers))}
		for i, s := range t.Transfers {
			rep.Transfers.Streams[i] = console.TransferStream(s)
		}
	}
	return rep
}

func (n *Node) consoleMembers() []console.Member {
	var out []console.Member
	for _, m := range n.members.Members() {
		out = append(out, console.Member{Name: m.Name, Addr: m.Addr, Status: string(m.Status), Alive: n.members.Alive(m.Name)})
	}
	return out
}

func (n *Node) consoleRing() console.Ring {
	r := n.serveRing()
	return console.Ring{Partitions: r.Partitions, N: r.N, Version: r.Version, Owned: r.Owned}
}

// peerAdminAddr asks a member over the data port where its admin port is.
// A member bound to every interface is reached at its data address's host.
func (n *Node) peerAdminAddr(ctx context.Context, node string) (string, error) {
	var st wire.StatusResp
	if err := (peerCaller{n: n}).Call(ctx, node, wire.TypeStatus, struct{}{}, &st); err != nil {
		return "", err
	}
	if st.Node != node {
		return "", fmt.Errorf("%s's address answered as %q", node, st.Node)
	}
	host, port, err := net.SplitHostPort(st.Admin)
	if err != nil || st.Admin == "" {
		return st.Admin, nil
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if dataHost, _, err := net.SplitHostPort(st.Addr); err == nil {
			return net.JoinHostPort(dataHost, port), nil
		}
	}
	return st.Admin, nil
}

// buildVersion is the binary's version as the console shows it: module
// version, VCS revision when the build recorded one, Go version.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	parts := []string{bi.Main.Version}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		parts = append(parts, rev+dirty)
	}
	return strings.Join(append(parts, bi.GoVersion), " ")
}
