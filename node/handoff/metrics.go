package handoff

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	stored        prometheus.Counter
	delivered     prometheus.Counter
	retargeted    prometheus.Counter
	errors        *prometheus.CounterVec
	paced         prometheus.Counter
	received      prometheus.Counter
	receivedBytes prometheus.Counter
	throttled     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, h *Handoff) (metrics, error) {
	m := metrics{
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_hints_stored_total",
			Help: "Writes this node stored as a hint while standing in for an unreachable primary."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_hints_delivered_total",
			Help: "Hints this node delivered and had acknowledged by their owner."}),
		retargeted: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_hints_retargeted_total",
			Help: "Hints kept for a member removed from the ring that every current primary of their partition acknowledged."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_hint_delivery_errors_total",
			Help: "Handoff rounds that failed, by owner."}, []string{"owner"}),
		paced: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_paced_total",
			Help: "Batches this node held back because the receiving owner asked for time."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_received_total",
			Help: "Hinted objects this node received from fallbacks and applied."}),
		receivedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_received_bytes_total",
			Help: "Bytes of hinted objects this node received and applied."}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_handoff_throttled_total",
			Help: "Handoff batches this node refused for now to pace its own catch-up."}),
	}
	for _, c := range []prometheus.Collector{m.stored, m.delivered, m.retargeted, m.errors, m.paced, m.received, m.receivedBytes, m.throttled, hintQueues{h}} {
		if err := reg.Register(c); err != nil {
			return metrics{}, err
		}
	}
	return m, nil
}

// hintQueues reports each owner's queue at scrape time, from the store's
// in-memory account (no scan).
type hintQueues struct{ h *Handoff }

var (
	hintsPendingDesc = prometheus.NewDesc("cairn_hints_pending", "Hints this node keeps for an owner that the owner has not acknowledged.", []string{"owner"}, nil)
	hintsBytesDesc   = prometheus.NewDesc("cairn_hints_bytes", "Bytes of the hints this node keeps for an owner.", []string{"owner"}, nil)
	hintsAgeDesc     = prometheus.NewDesc("cairn_hints_backlog_age_seconds",
		"Time since the owner's pending hints last went from none to some: an upper bound on the oldest pending hint's age.", []string{"owner"}, nil)
)

func (q hintQueues) Describe(ch chan<- *prometheus.Desc) {
	ch <- hintsPendingDesc
	ch <- hintsBytesDesc
	ch <- hintsAgeDesc
}

func (q hintQueues) Collect(ch chan<- prometheus.Metric) {
	now := q.h.d.Now().UnixNano()
	for owner, st := range q.h.d.Store.HintStats() {
		ch <- prometheus.MustNewConstMetric(hintsPendingDesc, prometheus.GaugeValue, float64(st.Pending), owner)
		ch <- prometheus.MustNewConstMetric(hintsBytesDesc, prometheus.GaugeValue, float64(st.Bytes), owner)
		age := 0.0
		if st.BacklogSince > 0 {
			age = float64(now-st.BacklogSince) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(hintsAgeDesc, prometheus.GaugeValue, age, owner)
	}
}
