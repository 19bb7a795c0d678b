package console

import "slices"

// Series is the cluster's request figures, second by second: every
// answering node's history summed. A node that did not answer adds
// nothing, and the report names it.
type Series struct {
	// T is each second's start, Unix milliseconds, oldest first.
	T   []int64             `json:"t"`
	Ops map[string]OpSeries `json:"ops"`
	// RepairsPerMin is the keys anti-entropy repaired in the minute up to
	// each second, summed over the nodes that answered.
	RepairsPerMin []uint64 `json:"repairs_per_min"`
}

// OpSeries is one request type's figures per second. P99Ms is the 99th
// percentile latency of the requests of the last p99Window seconds, in
// milliseconds; null where there were none.
type OpSeries struct {
	Rate   []uint64   `json:"rate"`
	Errors []uint64   `json:"errors"`
	P99Ms  []*float64 `json:"p99_ms"`
}

// p99Window is how many seconds of histograms each p99 point merges: one
// second of a lightly loaded cluster holds too few requests for a
// percentile to mean anything.
const p99Window = 10

// Sum adds up the nodes' points second by second over the last window
// seconds up to the newest point, filling seconds no node recorded with
// zeros.
func Sum(bounds []float64, nodes [][]Point, window int) Series {
	s := Series{Ops: map[string]OpSeries{}}
	var newest int64
	for _, pts := range nodes {
		for _, p := range pts {
			newest = max(newest, p.At/1000)
		}
	}
	if newest == 0 || window < 1 {
		for _, op := range Ops {
			s.Ops[op] = OpSeries{Rate: []uint64{}, Errors: []uint64{}, P99Ms: []*float64{}}
		}
		s.T, s.RepairsPerMin = []int64{}, []uint64{}
		return s
	}
	// Reach back far enough that the first point's p99 and repairs per
	// minute have their whole window.
	lead := max(p99Window, 60)
	first := newest - int64(window) + 1
	span := int(newest-first) + 1 + lead
	base := first - int64(lead)
	type sec struct {
		ops      map[string]OpPoint
		repaired uint64
	}
	secs := make([]sec, span)
	for _, pts := range nodes {
		for _, p := range pts {
			i := int(p.At/1000 - base)
			if i < 0 || i >= span {
				continue
			}
			if secs[i].ops == nil {
				secs[i].ops = map[string]OpPoint{}
			}
			for name, o := range p.Ops {
				cur := secs[i].ops[name]
				cur.Requests += o.Requests
				cur.Errors += o.Errors
				cur.Buckets = addBuckets(cur.Buckets, o.Buckets)
				secs[i].ops[name] = cur
			}
			secs[i].repaired += p.Repaired
		}
	}
	for i := lead; i < span; i++ {
		s.T = append(s.T, (base+int64(i))*1000)
		var perMin uint64
		for j := i - 59; j <= i; j++ {
			perMin += secs[j].repaired
		}
		s.RepairsPerMin = append(s.RepairsPerMin, perMin)
	}
	for _, op := range Ops {
		os := OpSeries{}
		for i := lead; i < span; i++ {
			o := secs[i].ops[op]
			os.Rate = append(os.Rate, o.Requests)
			os.Errors = append(os.Errors, o.Errors)
			var merged []uint64
			for j := i - p99Window + 1; j <= i; j++ {
				merged = addBuckets(merged, secs[j].ops[op].Buckets)
			}
			os.P99Ms = append(os.P99Ms, quantileMs(bounds, merged, 0.99))
		}
		s.Ops[op] = os
	}
	return s
}

func addBuckets(sum, b []uint64) []uint64 {
	if len(b) > len(sum) {
		sum = append(sum, make([]uint64, len(b)-len(sum))...)
	}
	for i, c := range b {
		sum[i] += c
	}
	return sum
}

// quantileMs estimates quantile q of a histogram (counts per bucket, the
// last past every bound) in milliseconds, interpolating inside the bucket
// as Prometheus's histogram_quantile does. Latencies past the last bound
// are reported as that bound. Nil for an empty histogram.
func quantileMs(bounds []float64, counts []uint64, q float64) *float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(bounds) == 0 {
		return nil
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		if i >= len(bounds) {
			v := bounds[len(bounds)-1] * 1000
			return &v
		}
		lower := 0.0
		if i > 0 {
			lower = bounds[i-1]
		}
		v := (lower + (bounds[i]-lower)*(rank-seen)/float64(c)) * 1000
		return &v
	}
	v := slices.Max(bounds) * 1000
	return &v
}
