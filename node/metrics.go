package node

import (
	"errors"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
	"github.com/cairnkv/cairn/quorum"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
)

// metrics live on a registry of the node's own, so that several nodes in one
// process (tests) never collide and nothing leaks into the global registry.
type metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	siblings      prometheus.Histogram
	siblingExcess prometheus.Counter
	refused       *prometheus.CounterVec
	omitted       prometheus.Counter
	connEvents    *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	tlsReloads    *prometheus.CounterVec
	forwarded     prometheus.Counter
	remoteGets    prometheus.Counter
	readRepairs   *prometheus.CounterVec
	failovers     *prometheus.CounterVec
	contextAhead  *prometheus.CounterVec
	pendingWrites *prometheus.CounterVec
	membersAlive  prometheus.Gauge
}

// latencyBuckets are the request latency histogram's bounds: 100 µs to
// 13 s, doubling. The console's history keeps the same buckets.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 18)

func newMetrics(n *Node) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_requests_total",
		Help: "Requests served, by message type and outcome.",
	}, []string{"type", "result"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cairn_request_duration_seconds",
		Help:    "Time to serve a request, by message type.",
		Buckets: latencyBuckets,
	}, []string{"type"})
	m.siblings = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cairn_object_siblings",
		Help:    "Siblings of objects after a coordinated write.",
		Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100, 200},
	})
	m.siblingExcess = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_sibling_limit_exceeded_total",
		Help: "Client writes that left an object with more siblings than the limit: writes that shrank an object merges had grown past it (nothing is dropped).",
	})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_writes_refused_total",
		Help: "Client writes this node refused because they would have grown an object past a limit, by limit (siblings, size).",
	}, []string{"limit"})
	m.omitted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_gets_values_omitted_total",
		Help: "Gets answered with the context and without the values, which were too large to send in one answer.",
	})
	m.connEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_connection_events_total",
		Help: "Connection lifecycle events of the data port, by kind.",
	}, []string{"kind"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_refusals_total",
		Help: "Connections and requests the node refused to protect itself, by reason: client_conn_limit, peer_conn_limit, source_conn_limit (connection caps), handshake_evicted (a silent socket closed to make room), peer_unverified (a hello naming a member from an address it does not advertise), tls_handshake (a connection whose TLS handshake failed: no TLS, a certificate from another CA or none), client_inflight_bytes and peer_inflight_bytes (a request answered overloaded: the byte budget was spent), hint_owner_bytes and hint_node_bytes (a hinted write answered overloaded: the hints kept for its owner, or for every owner, are at their cap).",
	}, []string{"reason"})
	m.tlsReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_tls_reloads_total",
		Help: "Times the node read changed TLS material from its certificates directory, by result: ok (new connections use it) or failed (the previous material stays in use).",
	}, []string{"result"})
	inflight := func(side string, read func() int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "cairn_inflight_bytes",
			Help:        "Bytes the data connections hold now (requests being served, answers not yet written), by side: client or peer connections.",
			ConstLabels: prometheus.Labels{"side": side},
		}, func() float64 { return float64(read()) })
	}
	m.forwarded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_forwarded_writes_total",
		Help: "Writes this node received for a key it does not hold and forwarded to a replica (a hop a token-aware client avoids).",
	})
	m.remoteGets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_nonreplica_gets_total",
		Help: "Gets coordinated by a node that is not one of the key's primaries, so every copy crossed the network (a hop a token-aware client avoids).",
	})
	m.readRepairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_read_repairs_total",
		Help: "Replica copies repaired after a get, by outcome.",
	}, []string{"result"})
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_request_failovers_total",
		Help: "Targets of a request replaced by a fallback within the request because they failed or stayed silent, by operation and reason.",
	}, []string{"op", "reason"})
	m.contextAhead = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_context_ahead_total",
		Help: "Writes whose context named writes this node's copy had not seen, so that it caught up with the other replicas first, by how the write went on: caught_up, refused (no reachable replica had seen them: a stale read or a forged context), clamped (a fallback lowered the context to its copy).",
	}, []string{"result"})
	m.pendingWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_pending_writes_total",
		Help: "Copies of writes for pending replicas (a membership change's next owners), by result: sent, hinted (the replica was down or failed; a hint kept here brings it later), lost (neither; the transfer or anti-entropy brings it).",
	}, []string{"result"})
	m.membersAlive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cairn_members_alive",
		Help: "Ring members this node sees alive (itself included).",
	})
	storeStats := newStoreCollector(func() store.Stats { return n.store.Stats() }) // n.store is set after the metrics
	m.registry.MustRegister(m.refusals,
		inflight("client", func() int64 { c, _ := n.server.InFlightBytes(); return c }),
		inflight("peer", func() int64 { _, p := n.server.InFlightBytes(); return p }))
	m.registry.MustRegister(m.requests, m.latency, m.siblings, m.siblingExcess, m.refused, m.omitted, m.connEvents, m.forwarded, m.remoteGets, m.readRepairs, m.failovers, m.contextAhead, m.pendingWrites, m.membersAlive, m.tlsReloads, storeStats,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(trafficCounters(n)...)
	return m
}

// coordObserver turns what the coordinator did into metrics and logs.
type coordObserver struct {
	m   *metrics
	log *zap.Logger
}

func (o coordObserver) Forwarded() { o.m.forwarded.Inc() }

func (o coordObserver) Failover(op string, from, to quorum.Target, why string) {
	label := why
	if label != "silent" && label != "unreachable" && label != "timeout" {
		label = "error" // keep the label set fixed: an error's text is unbounded
	}
	o.m.failovers.WithLabelValues(op, label).Inc()
	o.log.Debug("failover within a request", zap.String("op", op),
		zap.Stringer("from", from), zap.Stringer("to", to), zap.String("reason", why))
}

func (o coordObserver) ReadRepaired(t quorum.Target, err error) {
	if err != nil {
		o.m.readRepairs.WithLabelValues("failed").Inc()
		o.log.Debug("read repair failed", zap.Stringer("target", t), zap.Error(err))
		return
	}
	o.m.readRepairs.WithLabelValues("ok").Inc()
}

func (o coordObserver) Pending(node, outcome string, err error) {
	o.m.pendingWrites.WithLabelValues(outcome).Inc()
	if outcome == coord.PendingLost {
		o.log.Warn("a write could not reach a pending replica nor be kept as a hint for it; the transfer or anti-entropy brings it",
			zap.String("pending", node), zap.Error(err))
	}
}

func (o coordObserver) ContextAhead(read []string, outcome string) {
	o.m.contextAhead.WithLabelValues(outcome).Inc()
	if outcome != coord.ContextCaughtUp {
		o.log.Debug("write context ahead of every reachable copy", zap.String("result", outcome), zap.Strings("read", read))
	}
}

// trafficCounters expose the transport's byte counters, read at scrape
// time, on the side of the connections this node accepted (clients and
// peers calling it: side="server") and of those it dialled to its peers
// (side="client"). A benchmark divides their growth by the requests it
// sent to learn the bytes a request costs the cluster.
// storeCollector reports the store's figures, read once per scrape: its
// Stats asks pebble for its metrics, which is cheap but not free.
type storeCollector struct {
	stats                              func() store.Stats
	disk, hits, misses, writes, synced *prometheus.Desc
	walSyncs, stalls, backgroundErrors *prometheus.Desc
}

func newStoreCollector(stats func() store.Stats) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &storeCollector{
		stats:            stats,
		disk:             d("cairn_store_disk_bytes", "Bytes the node's pebble database uses on disk."),
		hits:             d("cairn_store_object_cache_hits_total", "Object reads (gets, and the read of every write) answered by the object cache."),
		misses:           d("cairn_store_object_cache_misses_total", "Object reads that went to pebble."),
		writes:           d("cairn_store_writes_total", "Objects written."),
		synced:           d("cairn_store_synced_writes_total", "Objects written and fsynced before the write returned."),
		walSyncs:         d("cairn_store_wal_syncs_total", "fsyncs of the write-ahead log; synced writes per sync above one is group commit at work."),
		stalls:           d("cairn_store_write_stalls_total", "Times pebble stopped writes to let flushes or compactions catch up."),
		backgroundErrors: d("cairn_store_background_errors_total", "Failed flushes and compactions (pebble retries them; a steady rise means the disk is failing)."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.disk, c.hits, c.misses, c.writes, c.synced, c.walSyncs, c.stalls, c.backgroundErrors} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.disk, prometheus.GaugeValue, float64(st.DiskBytes))
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{c.hits, st.ObjectCacheHits}, {c.misses, st.ObjectCacheMisses}, {c.writes, st.Writes}, {c.synced, st.SyncedWrites},
		{c.walSyncs, st.WALSyncs}, {c.stalls, st.WriteStalls}, {c.backgroundErrors, st.BackgroundErrors}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}

func trafficCounters(n *Node) []prometheus.Collector {
	counter := func(name, help, side string, read func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"side": side}},
			func() float64 { return float64(read()) })
	}
	const (
		sent     = "cairn_transport_bytes_sent_total"
		sentHelp = "Bytes of frames written to the data connections, handshakes excluded, by side: server (connections this node accepted) or client (connections it dialled to peers)."
		recv     = "cairn_transport_bytes_received_total"
		recvHelp = "Bytes of frames read from the data connections, handshakes excluded, by side: server (connections this node accepted) or client (connections it dialled to peers)."
	)
	return []prometheus.Collector{
		counter(sent, sentHelp, "server", func() uint64 { return n.server.Traffic().Sent() }),
		counter(sent, sentHelp, "client", func() uint64 { return n.peers.Traffic().Sent() }),
		counter(recv, recvHelp, "server", func() uint64 { return n.server.Traffic().Received() }),
		counter(recv, recvHelp, "client", func() uint64 { return n.peers.Traffic().Received() }),
	}
}

func (m *metrics) observeRequest(t wire.Type, err error, d time.Duration) {
	m.requests.WithLabelValues(t.String(), resultLabel(err)).Inc()
	m.latency.WithLabelValues(t.String()).Observe(d.Seconds())
}

func (m *metrics) transportEvent(ev transport.Event) {
	m.connEvents.WithLabelValues(ev.Kind.String()).Inc()
}

// resultLabel keeps the label set small and fixed.
func resultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, cairn.ErrNotFound):
		return "not_found"
	case errors.Is(err, cairn.ErrQuorum):
		return "quorum"
	case errors.Is(err, cairn.ErrTimeout):
		return "timeout"
	case errors.Is(err, cairn.ErrInvalidArgument):
		return "invalid"
	case errors.Is(err, cairn.ErrOverloaded):
		return "overloaded"
	case errors.Is(err, cairn.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}
