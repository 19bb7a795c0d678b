package transfer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	keys     prometheus.Counter
	bytes    prometheus.Counter
	received prometheus.Counter
	streams  *prometheus.CounterVec
	active   prometheus.Gauge
	dropped  prometheus.Counter
	moving   prometheus.Gauge
	flipped  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		keys: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_transfer_keys_sent_total",
			Help: "Objects this node sent to new owners during membership changes."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_transfer_bytes_sent_total",
			Help: "Bytes of records (key and value) this node sent to new owners."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_transfer_keys_received_total",
			Help: "Objects this node received as a new owner."}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_transfer_streams_total",
			Help: "Partition streams this node ended, by result (done, failed)."}, []string{"result"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_transfer_active",
			Help: "Partition streams this node is sending now."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_transfer_partitions_dropped_total",
			Help: "Partition copies this node dropped after a change moved them to other owners."}),
		moving: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_transfer_partitions_moving",
			Help: "Partitions that have data to move in the membership change in flight, as this node sees it (0: none in flight)."}),
		flipped: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_transfer_partitions_flipped",
			Help: "Partitions of the change in flight whose reads moved to their next owners."}),
	}
	for _, c := range []prometheus.Collector{m.keys, m.bytes, m.received, m.streams, m.active, m.dropped, m.moving, m.flipped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.streams.WithLabelValues("done")
	m.streams.WithLabelValues("failed")
	return m, nil
}
