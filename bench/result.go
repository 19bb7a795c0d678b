package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured; it is written as the JSON result file.
// Latencies are in microseconds and are those of successful requests;
// failed ones are counted in Errors, by kind.
type Result struct {
	Config Settings     `json:"config"`
	Start  time.Time    `json:"start"`
	End    time.Time    `json:"end"`
	Load   *PhaseResult `json:"load,omitempty"`
	// Primed counts the keys read (unmeasured) before a run without a
	// load, so that updates carry their contexts.
	Primed  int64        `json:"primed,omitempty"`
	Run     *PhaseResult `json:"run,omitempty"`
	Aborted string       `json:"aborted,omitempty"` // why the run stopped early
}

// Settings records how the run was configured, for the result file.
type Settings struct {
	Workload     string            `json:"workload,omitempty"`
	Mix          string            `json:"mix"`
	Distribution Distribution      `json:"distribution"`
	Records      int               `json:"records"`
	Bucket       string            `json:"bucket"`
	ValueSize    int               `json:"value_size"`
	Concurrency  int               `json:"concurrency"`
	Duration     string            `json:"duration,omitempty"`
	Ops          int64             `json:"ops,omitempty"`
	Rate         float64           `json:"rate,omitempty"` // 0: closed loop
	Warmup       string            `json:"warmup,omitempty"`
	Load         bool              `json:"load"`
	Seed         uint64            `json:"seed"`
	Targets      []string          `json:"targets,omitempty"`
	Consistency  map[string]string `json:"consistency"` // the flags given; empty: the nodes' defaults
}

// PhaseResult is one phase: the load (inserts) or the measured run.
type PhaseResult struct {
	Start    time.Time `json:"start"` // after the warmup
	End      time.Time `json:"end"`
	Seconds  float64   `json:"duration_s"`
	Requests int64     `json:"requests"` // successes and errors
	OK       int64     `json:"ok"`
	Errors   int64     `json:"errors"`
	// OpsPerSec counts successful requests.
	OpsPerSec float64              `json:"ops_per_sec"`
	Ops       map[string]*OpResult `json:"ops"`
	// Backlog (open loop only) is how many requests were due before the
	// end but never sent because the workers were still waiting for
	// earlier ones: offered load the cluster did not take.
	Backlog int64 `json:"backlog,omitempty"`
	// Series has one point per reporting interval.
	Series []Point `json:"series"`
	// Cost (the measured run only) is what the requests cost the nodes.
	Cost *Cost `json:"cost,omitempty"`
}

// OpResult is one operation's totals.
type OpResult struct {
	Requests  int64             `json:"requests"`
	OK        int64             `json:"ok"`
	NotFound  int64             `json:"not_found"` // successful reads of no value
	Errors    map[string]int64  `json:"errors"`    // every kind, zeros included
	Samples   map[string]string `json:"error_samples,omitempty"`
	OpsPerSec float64           `json:"ops_per_sec"`
	Latency   Latency           `json:"latency_us"`
}

// Latency summarises a histogram, in microseconds.
type Latency struct {
	Min  int64   `json:"min"`
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P95  int64   `json:"p95"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
}

// Point is one reporting interval, T seconds after the phase's start.
type Point struct {
	T            float64            `json:"t_s"`
	OpsPerSec    float64            `json:"ops_per_sec"`
	Errors       int64              `json:"errors"`
	ErrorsPerSec float64            `json:"errors_per_sec"`
	Ops          map[string]PointOp `json:"ops"`
}

// PointOp is one operation over one interval.
type PointOp struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    int64   `json:"errors"`
	P50       int64   `json:"p50_us"`
	P99       int64   `json:"p99_us"`
	P999      int64   `json:"p99_9_us"`
}

func opResult(s *opStats, seconds float64) *OpResult {
	h := s.hist
	r := &OpResult{
		OK:       s.ok(),
		NotFound: s.notFound,
		Errors:   map[string]int64{},
		Latency: Latency{
			Min: h.Min(), Mean: h.Mean(),
			P50: h.ValueAtQuantile(50), P95: h.ValueAtQuantile(95), P99: h.ValueAtQuantile(99),
			P999: h.ValueAtQuantile(99.9), Max: h.Max(),
		},
	}
	for k, n := range s.errs {
		r.Errors[kindNames[k]] = n
		if s.samples[k] != "" {
			if r.Samples == nil {
				r.Samples = map[string]string{}
			}
			r.Samples[kindNames[k]] = s.samples[k]
		}
	}
	r.Requests = r.OK + s.errors()
	if seconds > 0 {
		r.OpsPerSec = float64(r.OK) / seconds
	}
	return r
}

func point(t float64, w window, ops []Op, seconds float64) Point {
	p := Point{T: t, Ops: map[string]PointOp{}}
	for _, op := range ops {
		s := w[op]
		po := PointOp{Errors: s.errors(), P50: s.hist.ValueAtQuantile(50), P99: s.hist.ValueAtQuantile(99), P999: s.hist.ValueAtQuantile(99.9)}
		if seconds > 0 {
			po.OpsPerSec = float64(s.ok()) / seconds
		}
		p.OpsPerSec += po.OpsPerSec
		p.Errors += po.Errors
		p.Ops[op.String()] = po
	}
	if seconds > 0 {
		p.ErrorsPerSec = float64(p.Errors) / seconds
	}
	return p
}

// WriteJSON writes the result to path, atomically (a temporary file
// renamed), so a reader never sees half a result.
func (r *Result) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteSummary prints the result for a person: one line per phase, a table
// of operations, and every error kind that occurred with a sample message.
func (r *Result) WriteSummary(w io.Writer) error {
	c := r.Config
	loop := "closed loop"
	if c.Rate > 0 {
		loop = fmt.Sprintf("open loop at %g ops/s", c.Rate)
	}
	name := "custom mix"
	if c.Workload != "" {
		name = "workload " + c.Workload
	}
	fmt.Fprintf(w, "cairn bench: %s (%s), %s, %d records of %d B, %d workers, %s\n",
		name, c.Mix, c.Distribution, c.Records, c.ValueSize, c.Concurrency, loop)
	if r.Load != nil {
		writePhase(w, "load", r.Load)
	}
	if r.Run != nil {
		writePhase(w, "run", r.Run)
	}
	if r.Aborted != "" {
		fmt.Fprintf(w, "aborted: %s\n", r.Aborted)
	}
	return nil
}

func writePhase(w io.Writer, name string, p *PhaseResult) {
	fmt.Fprintf(w, "\n%s: %.1fs, %d requests, %.0f ops/s, %d errors", name, p.Seconds, p.Requests, p.OpsPerSec, p.Errors)
	if p.Backlog > 0 {
		fmt.Fprintf(w, ", %d requests due but never sent (backlog)", p.Backlog)
	}
	fmt.Fprintln(w)
	if p.Cost != nil {
		fmt.Fprintln(w, p.Cost.summary())
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tops/s\tok\tnot found\terrors\tp50\tp95\tp99\tp99.9\tmax\t")
	var errLines []string
	for _, op := range sortedOps(p.Ops) {
		o := p.Ops[op]
		l := o.Latency
		lat := []string{micros(l.P50), micros(l.P95), micros(l.P99), micros(l.P999), micros(l.Max)}
		if o.OK == 0 {
			lat = []string{"-", "-", "-", "-", "-"} // no success, no latency
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%d\t%s\t\n", op, o.OpsPerSec, o.OK, o.NotFound, o.Requests-o.OK, strings.Join(lat, "\t"))
		for _, k := range kindNames {
			if n := o.Errors[k]; n > 0 {
				errLines = append(errLines, fmt.Sprintf("  %s %s: %d (e.g. %s)", op, k, n, oneLine(o.Samples[k])))
			}
		}
	}
	_ = tw.Flush()
	if len(errLines) > 0 {
		fmt.Fprintln(w, "errors:")
		fmt.Fprintln(w, strings.Join(errLines, "\n"))
	}
}

// sortedOps lists the operations present in Op order.
func sortedOps[V any](m map[string]V) []string {
	var out []string
	for _, n := range opNames {
		if _, ok := m[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// micros formats a latency in µs with a unit a person reads at a glance.
func micros(us int64) string {
	switch {
	case us >= 1_000_000:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	case us >= 1000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	}
	return fmt.Sprintf("%dµs", us)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
