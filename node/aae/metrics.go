package aae

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are anti-entropy's Prometheus metrics. Counters the status
// message also reports are read from the manager's atomics at scrape time,
// so the two never disagree. No metric is labelled by partition: 1,024
// series per node would cost more than they tell; `cairn aae status
// --trees` lists partitions.
type metrics struct {
	exchanges *prometheus.CounterVec
	segments  prometheus.Counter
	differing *prometheus.CounterVec
	duration  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, a *AAE) (metrics, error) {
	m := metrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_aae_exchanges_total",
			Help: "Anti-entropy exchanges this node initiated, by result: in_sync (nothing differed), repaired, truncated (the key budget cut it short; the rest follows), busy (the partition was in another exchange), failed."},
			[]string{"result"}),
		segments: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_aae_segments_differing_total",
			Help: "Tree segments this node's exchanges found different."}),
		differing: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_aae_keys_differing_total",
			Help: "Keys this node's exchanges found different, by kind: missing_here, missing_there, differ (both hold other versions)."},
			[]string{"kind"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cairn_aae_exchange_duration_seconds",
			Help: "Time an exchange this node initiated took, repairs included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}),
	}
	counter := func(name, help string, labels prometheus.Labels, v func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, v)
	}
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v)
	}
	const repairedHelp = "Keys anti-entropy repaired: fetched from a peer into this node, or pushed from this node to a peer."
	const bytesHelp = "Bytes of anti-entropy messages (frames) this node sent and received, as initiator and as responder."
	for _, c := range []prometheus.Collector{m.exchanges, m.segments, m.differing, m.duration,
		counter("cairn_aae_keys_repaired_total", repairedHelp, prometheus.Labels{"direction": "fetched"}, func() float64 { return float64(a.stats.fetched.Load()) }),
		counter("cairn_aae_keys_repaired_total", repairedHelp, prometheus.Labels{"direction": "pushed"}, func() float64 { return float64(a.stats.pushed.Load()) }),
		counter("cairn_aae_bytes_total", bytesHelp, prometheus.Labels{"direction": "sent"}, func() float64 { return float64(a.stats.sent.Load()) }),
		counter("cairn_aae_bytes_total", bytesHelp, prometheus.Labels{"direction": "received"}, func() float64 { return float64(a.stats.received.Load()) }),
		counter("cairn_aae_tree_rebuilds_total", "Partition trees rebuilt from storage.", nil, func() float64 { return float64(a.stats.rebuilds.Load()) }),
		counter("cairn_vv_pruned_entries_total", "Version-vector entries of retired actors pruned from this node's copies (docs/ARCHITECTURE.md, \"Pruning retired actors\").", nil,
			func() float64 { return float64(a.stats.prunedEntries.Load()) }),
		counter("cairn_vv_pruned_keys_total", "Keys of this node whose version vector a prune shrank.", nil,
			func() float64 { return float64(a.stats.prunedKeys.Load()) }),
		counter("cairn_aae_tree_updates_total", "Object writes applied to the trees (the write path's share of anti-entropy).", nil,
			func() float64 { return float64(a.trees.updates.Load()) }),
		counter("cairn_aae_tree_update_seconds_total", "Time the write path spent updating trees (versions hashed, segment XORed).", nil,
			func() float64 { return float64(a.trees.updateNanos.Load()) / 1e9 }),
		gauge("cairn_aae_partitions_not_ready", "Partitions whose tree is being rebuilt and cannot be compared yet.", func() float64 {
			_, notReady := a.trees.counts()
			return float64(notReady)
		}),
		gauge("cairn_aae_partitions_never_exchanged", "Replicated partitions with no completed exchange since the node started.", func() float64 {
			never, _ := a.coverage()
			return float64(never)
		}),
		gauge("cairn_aae_oldest_exchange_age_seconds",
			"Time since the last completed exchange of the least recently exchanged replicated partition; a partition never exchanged counts from the node's start.",
			func() float64 {
				_, oldest := a.coverage()
				return float64(oldest) / 1e9
			}),
		gauge("cairn_aae_exchanges_running", "Exchanges this node has in flight as initiator.", func() float64 {
			a.mu.Lock()
			defer a.mu.Unlock()
			return float64(a.sched.Stats().Running)
		}),
		gauge("cairn_aae_pairs_urgent", "Partition and peer pairs waiting for an urgent exchange: shared with a peer that came back, or with every peer after this node started.", func() float64 {
			a.mu.Lock()
			defer a.mu.Unlock()
			return float64(a.sched.Stats().Urgent)
		}),
	} {
		if err := reg.Register(c); err != nil {
			return metrics{}, err
		}
	}
	return m, nil
}

// coverage is the number of replicated partitions never exchanged, and the
// age in nanoseconds of the oldest exchange (a never-exchanged partition
// counting from the start).
func (a *AAE) coverage() (never int, oldest int64) {
	now := a.clock()
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.assigned {
		e := a.last[p]
		age := now
		if e.done {
			age = now - e.at
		} else {
			never++
		}
		oldest = max(oldest, age)
	}
	return never, oldest
}

// observe counts one finished exchange.
func (m metrics) observe(res Result) {
	result := "failed"
	switch {
	case res.Busy:
		result = "busy"
	case res.Err != nil:
	case res.Stats.Truncated:
		result = "truncated"
	case res.Keys() > 0:
		result = "repaired"
	default:
		result = "in_sync"
	}
	m.exchanges.WithLabelValues(result).Inc()
	if res.Err != nil || res.Busy {
		return
	}
	m.duration.Observe(res.Took.Seconds())
	m.segments.Add(float64(res.Stats.SegmentsDiffering))
	m.differing.WithLabelValues("missing_here").Add(float64(res.Stats.KeysMissingHere))
	m.differing.WithLabelValues("missing_there").Add(float64(res.Stats.KeysMissingThere))
	m.differing.WithLabelValues("differ").Add(float64(res.Stats.KeysDiffering))
}
