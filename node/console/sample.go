package console

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The metrics a Reading is made of: the node's request counter and
// latency histogram, labelled by request type, and anti-entropy's
// repaired keys.
const (
	requestsMetric = "cairn_requests_total"
	latencyMetric  = "cairn_request_duration_seconds"
	repairedMetric = "cairn_aae_keys_repaired_total"
)

// okResults are the request outcomes that are not errors: a get of a
// missing key is a success.
var okResults = map[string]bool{"ok": true, "not_found": true}

// Read gathers g and makes a Reading of it. g should hold only the
// metrics above (a registry of their collectors), so that sampling costs
// nothing else.
func Read(g prometheus.Gatherer) (Reading, error) {
	families, err := g.Gather()
	if err != nil {
		return Reading{}, fmt.Errorf("gather metrics: %w", err)
	}
	r := Reading{Ops: map[string]OpReading{}}
	for _, op := range Ops {
		r.Ops[op] = OpReading{}
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case requestsMetric:
				op, ok := r.Ops[label(m, "type")]
				if !ok {
					continue
				}
				n := uint64(m.GetCounter().GetValue())
				op.Requests += n
				if !okResults[label(m, "result")] {
					op.Errors += n
				}
				r.Ops[label(m, "type")] = op
			case latencyMetric:
				op, ok := r.Ops[label(m, "type")]
				if !ok {
					continue
				}
				h := m.GetHistogram()
				op.Buckets = op.Buckets[:0]
				for _, b := range h.GetBucket() {
					op.Buckets = append(op.Buckets, b.GetCumulativeCount())
				}
				op.Buckets = append(op.Buckets, h.GetSampleCount())
				r.Ops[label(m, "type")] = op
			case repairedMetric:
				r.Repaired += uint64(m.GetCounter().GetValue())
			}
		}
	}
	return r, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Sample records a reading into h every interval until ctx ends. A reading
// that fails is skipped: the chart has a gap rather than a wrong point.
func Sample(ctx context.Context, h *History, every time.Duration, read func() (Reading, error), now func() time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if r, err := read(); err == nil {
			h.Record(now(), r)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
