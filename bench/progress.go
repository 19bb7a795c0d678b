package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// report runs for the length of a phase: once per interval it collects the
// workers' recorders into a point of the series and prints a progress line.
// It returns the series when stop closes, after a last collection so the
// totals include every request.
func (r *runner) report(p *phase, col *collector, stop <-chan struct{}) []Point {
	var series []Point
	out := progress{w: r.cfg.Progress, inPlace: r.cfg.ProgressInPlace, phase: p.name}
	defer out.finish()

	if wait := time.Until(p.measureFrom); wait > 0 {
		out.printf("%s: warming up for %v", p.name, p.warmup)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			col.collect()
			return series
		}
	}
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	last := time.Now()
	var errs int64
	for {
		select {
		case now := <-tick.C:
			secs := now.Sub(last).Seconds()
			pt := point(now.Sub(p.measureFrom).Seconds(), col.collect(), p.ops, secs)
			series = append(series, pt)
			errs += pt.Errors
			out.line(pt, p.ops, errs)
			last = now
		case <-stop:
			now := time.Now()
			w := col.collect()
			// A last partial interval is in the totals; it becomes a
			// point only when it is long enough for a stable rate.
			if secs := now.Sub(last).Seconds(); secs >= r.cfg.Interval.Seconds()/2 {
				series = append(series, point(now.Sub(p.measureFrom).Seconds(), w, p.ops, secs))
			}
			return series
		}
	}
}

// progress writes the progress line, in place on a terminal.
type progress struct {
	w       io.Writer
	inPlace bool
	phase   string
	printed bool
}

func (o *progress) printf(format string, args ...any) {
	if o.w == nil {
		return
	}
	line := fmt.Sprintf(format, args...)
	if o.inPlace {
		// Carriage return, then erase to the end of the line.
		fmt.Fprintf(o.w, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(o.w, line)
	}
	o.printed = true
}

func (o *progress) line(pt Point, ops []Op, totalErrs int64) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %5.0fs  %8.0f ops/s  p99", o.phase, pt.T, pt.OpsPerSec)
	for _, op := range ops {
		fmt.Fprintf(&b, " %s %s", op, micros(pt.Ops[op.String()].P99))
	}
	fmt.Fprintf(&b, "  errors %d (total %d)", pt.Errors, totalErrs)
	o.printf("%s", b.String())
}

// finish ends an in-place line so what follows starts on its own.
func (o *progress) finish() {
	if o.w != nil && o.inPlace && o.printed {
		fmt.Fprintln(o.w)
	}
}
