package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// The plot is laid out once as a list of shapes (a chart) and then drawn by
// one of two small back ends, SVG (text, no dependency) or PNG (rasterised
// with golang.org/x/image), so both formats show the same picture.

// WritePlot draws the run phase's series, throughput over time above and
// latency (p50 and p99 per operation, log scale) below, as SVG or PNG by
// path's extension.
func (r *Result) WritePlot(path string) error {
	if err := PlotFormatOK(path); err != nil {
		return err
	}
	c := r.chart()
	var b bytes.Buffer
	var err error
	if strings.EqualFold(filepath.Ext(path), ".svg") {
		err = c.writeSVG(&b)
	} else {
		err = c.writePNG(&b)
	}
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b.Bytes())
}

// PlotFormatOK reports whether WritePlot can write path, so a caller can
// refuse a bad name before a long run rather than after it.
func PlotFormatOK(path string) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".svg" && ext != ".png" {
		return fmt.Errorf("plot %q: the file name must end in .svg or .png", path)
	}
	return nil
}

type rgb struct{ r, g, b uint8 }

func (c rgb) hex() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

var (
	white     = rgb{255, 255, 255}
	black     = rgb{0x22, 0x22, 0x22}
	gray      = rgb{0x66, 0x66, 0x66}
	gridColor = rgb{0xe3, 0xe3, 0xe3}
	errColor  = rgb{0xd7, 0x19, 0x1c}
	// One colour per operation (Okabe-Ito, readable by colour-blind eyes).
	opColors = [numOps]rgb{{0x00, 0x72, 0xb2}, {0xd5, 0x5e, 0x00}, {0x00, 0x9e, 0x73}, {0xcc, 0x79, 0xa7}}
)

type pt struct{ x, y float64 }

type polyline struct {
	pts    []pt
	color  rgb
	width  float64
	dashed bool
}

type rect struct {
	x, y, w, h float64
	fill       rgb
	stroke     *rgb
}

type anchor int

const (
	anchorStart anchor = iota
	anchorMiddle
	anchorEnd
)

// label is text whose baseline starts, centres or ends at (x, y).
type label struct {
	x, y   float64
	text   string
	size   float64
	anchor anchor
	color  rgb
}

// chart is the laid-out picture, drawn in order: rects, lines, labels.
type chart struct {
	w, h   float64
	rects  []rect
	lines  []polyline
	labels []label
}

const (
	chartW  = 1000.0
	chartH  = 740.0
	plotX0  = 90.0
	plotX1  = 800.0
	legendX = 820.0
)

// series is one line of a panel.
type series struct {
	name   string
	color  rgb
	dashed bool
	pts    []pt // y NaN where there is no value: the line breaks there
}

// panel is one plot area with its axes.
type panel struct {
	title  string
	y0, y1 float64 // top and bottom of the plot area
	logY   bool
	series []series
}

func (r *Result) chart() *chart {
	c := &chart{w: chartW, h: chartH}
	c.rects = append(c.rects, rect{w: chartW, h: chartH, fill: white})
	c.title(r)
	p := r.Run
	if p == nil || len(p.Series) == 0 {
		c.labels = append(c.labels, label{x: chartW / 2, y: chartH / 2, text: "no data: the run ended before its first reporting interval",
			size: 16, anchor: anchorMiddle, color: gray})
		return c
	}
	ops := sortedOps(p.Ops)
	var thr, lat []series
	total := series{name: "all ops", color: black}
	for _, s := range p.Series {
		total.pts = append(total.pts, pt{s.T, s.OpsPerSec})
	}
	thr = append(thr, total)
	if r.Config.Rate > 0 {
		last := p.Series[len(p.Series)-1].T
		thr = append(thr, series{name: "target rate", color: gray, dashed: true,
			pts: []pt{{0, r.Config.Rate}, {last, r.Config.Rate}}})
	}
	if p.Errors > 0 {
		errs := series{name: "errors", color: errColor}
		for _, s := range p.Series {
			errs.pts = append(errs.pts, pt{s.T, s.ErrorsPerSec})
		}
		thr = append(thr, errs)
	}
	for _, name := range ops {
		color := opColors[opIndex(name)]
		t := series{name: name, color: color}
		p50 := series{name: name + " p50", color: color, dashed: true}
		p99 := series{name: name + " p99", color: color}
		for _, s := range p.Series {
			o := s.Ops[name]
			t.pts = append(t.pts, pt{s.T, o.OpsPerSec})
			p50.pts = append(p50.pts, pt{s.T, msOrNaN(o.P50)})
			p99.pts = append(p99.pts, pt{s.T, msOrNaN(o.P99)})
		}
		if len(ops) > 1 {
			thr = append(thr, t)
		}
		lat = append(lat, p99, p50)
	}
	xmax := p.Series[len(p.Series)-1].T
	c.panel(panel{title: "throughput (successful ops/s; errors/s in red)", y0: 118, y1: 375, series: thr}, xmax)
	c.panel(panel{title: "latency (ms, log scale): p99 solid, p50 dashed", y0: 448, y1: 690, logY: true, series: lat}, xmax)
	return c
}

func opIndex(name string) int {
	for i, n := range opNames {
		if n == name {
			return i
		}
	}
	return 0
}

func msOrNaN(us int64) float64 {
	if us <= 0 {
		return math.NaN()
	}
	return float64(us) / 1000
}

func (c *chart) title(r *Result) {
	s := r.Config
	name := "custom mix"
	if s.Workload != "" {
		name = "workload " + strings.ToUpper(s.Workload)
	}
	loop := "closed loop"
	if s.Rate > 0 {
		loop = fmt.Sprintf("open loop at %g ops/s", s.Rate)
	}
	c.labels = append(c.labels,
		label{x: plotX0, y: 32, text: fmt.Sprintf("cairn bench: %s (%s)", name, s.Mix), size: 20, color: black},
		label{x: plotX0, y: 56, text: fmt.Sprintf("%s keys, %d records of %d B, %d workers, %s, started %s",
			s.Distribution, s.Records, s.ValueSize, s.Concurrency, loop, r.Start.Format("2006-01-02 15:04:05")), size: 13, color: gray})
	if r.Run != nil {
		c.labels = append(c.labels, label{x: plotX0, y: 76, size: 13, color: gray,
			text: fmt.Sprintf("%.0f ops/s over %.1fs, %d errors", r.Run.OpsPerSec, r.Run.Seconds, r.Run.Errors)})
	}
}

// panel lays out one plot area: frame, grid, ticks, series and legend.
func (c *chart) panel(p panel, xmax float64) {
	// A run of 20s ends at 20.01s: let the last tick fall a little short
	// of the data rather than add a nearly empty fifth of the axis.
	xmax = math.Max(xmax, 1)
	xt := linearTicks(0, xmax/1.02)
	for len(xt) > 2 && xt[len(xt)-1] > xmax {
		xt = xt[:len(xt)-1]
	}
	xhi := math.Max(xt[len(xt)-1], xmax)
	ylo, yhi, yt := p.yAxis()
	sx := func(x float64) float64 { return plotX0 + x/xhi*(plotX1-plotX0) }
	sy := func(y float64) float64 {
		if p.logY {
			return p.y1 - (math.Log10(y)-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo))*(p.y1-p.y0)
		}
		return p.y1 - (y-ylo)/(yhi-ylo)*(p.y1-p.y0)
	}
	c.labels = append(c.labels, label{x: plotX0, y: p.y0 - 12, text: p.title, size: 14, color: black})
	frame := black
	c.rects = append(c.rects, rect{x: plotX0, y: p.y0, w: plotX1 - plotX0, h: p.y1 - p.y0, fill: white, stroke: &frame})
	for _, v := range xt {
		x := sx(v)
		c.lines = append(c.lines, polyline{pts: []pt{{x, p.y0}, {x, p.y1}}, color: gridColor, width: 1},
			polyline{pts: []pt{{x, p.y1}, {x, p.y1 + 5}}, color: black, width: 1})
		c.labels = append(c.labels, label{x: x, y: p.y1 + 19, text: tickText(v), size: 12, anchor: anchorMiddle, color: black})
	}
	c.labels = append(c.labels, label{x: plotX1, y: p.y1 + 38, text: "seconds since start", size: 12, anchor: anchorEnd, color: gray})
	for _, v := range yt {
		y := sy(v)
		c.lines = append(c.lines, polyline{pts: []pt{{plotX0, y}, {plotX1, y}}, color: gridColor, width: 1},
			polyline{pts: []pt{{plotX0 - 5, y}, {plotX0, y}}, color: black, width: 1})
		c.labels = append(c.labels, label{x: plotX0 - 9, y: y + 4, text: tickText(v), size: 12, anchor: anchorEnd, color: black})
	}
	ly := p.y0 + 12
	for _, s := range p.series {
		for _, run := range splitNaN(s.pts) {
			pl := polyline{color: s.color, width: 2, dashed: s.dashed}
			for _, q := range run {
				pl.pts = append(pl.pts, pt{sx(q.x), sy(q.y)})
			}
			if len(pl.pts) == 1 { // a lone point: a short tick so it shows
				pl.pts = append(pl.pts, pt{pl.pts[0].x + 2, pl.pts[0].y})
			}
			c.lines = append(c.lines, pl)
		}
		c.lines = append(c.lines, polyline{pts: []pt{{legendX, ly - 4}, {legendX + 30, ly - 4}}, color: s.color, width: 2, dashed: s.dashed})
		c.labels = append(c.labels, label{x: legendX + 38, y: ly, text: s.name, size: 13, color: black})
		ly += 20
	}
}

// yAxis chooses the panel's range and ticks from its data.
func (p panel) yAxis() (lo, hi float64, ticks []float64) {
	dmin, dmax := math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		for _, q := range s.pts {
			if !math.IsNaN(q.y) && (!p.logY || q.y > 0) {
				dmin, dmax = math.Min(dmin, q.y), math.Max(dmax, q.y)
			}
		}
	}
	if p.logY {
		if math.IsInf(dmin, 1) {
			dmin, dmax = 1, 10
		}
		t := logTicks(dmin, dmax)
		return t[0], t[len(t)-1], t
	}
	if math.IsInf(dmax, -1) || dmax <= 0 {
		dmax = 1
	}
	t := linearTicks(0, dmax)
	return 0, t[len(t)-1], t
}

// linearTicks covers [lo, hi] with about six round steps (1, 2 or 5 times
// a power of ten), from lo up to the first tick at or above hi.
func linearTicks(lo, hi float64) []float64 {
	step := niceStep((hi - lo) / 6)
	var t []float64
	for i := 0; ; i++ {
		v := lo + float64(i)*step
		t = append(t, roundTo(v, step))
		if v >= hi-step*1e-9 || i > 100 {
			return t
		}
	}
}

func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func roundTo(v, step float64) float64 {
	return math.Round(v/step) * step
}

// logTicks covers [lo, hi] (both positive) with 1-2-5 ticks per decade, or
// decades only when the range spans more than three.
func logTicks(lo, hi float64) []float64 {
	d0 := math.Floor(math.Log10(lo))
	d1 := math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	mults := []float64{1, 2, 5}
	if d1-d0 > 3 {
		mults = []float64{1}
	}
	var all []float64
	for d := d0; d <= d1; d++ {
		for _, m := range mults {
			all = append(all, m*math.Pow(10, d))
		}
	}
	// Keep from the last tick at or below lo to the first at or above hi.
	first, last := 0, len(all)-1
	for i, v := range all {
		if v <= lo*(1+1e-9) {
			first = i
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i] >= hi*(1-1e-9) {
			last = i
		}
	}
	if last <= first {
		last = min(first+1, len(all)-1)
	}
	return all[first : last+1]
}

// tickText prints a tick value briefly: 1500 as 1.5k, 0.05 as 0.05.
func tickText(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// splitNaN cuts a line where it has no value.
func splitNaN(pts []pt) [][]pt {
	var runs [][]pt
	var cur []pt
	for _, q := range pts {
		if math.IsNaN(q.y) {
			if len(cur) > 0 {
				runs = append(runs, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, q)
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
}

// writeSVG draws the chart as SVG 1.1.
func (c *chart) writeSVG(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`+"\n",
		c.w, c.h, c.w, c.h)
	for _, r := range c.rects {
		stroke := `stroke="none"`
		if r.stroke != nil {
			stroke = fmt.Sprintf(`stroke="%s" stroke-width="1"`, r.stroke.hex())
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" %s/>`+"\n", r.x, r.y, r.w, r.h, r.fill.hex(), stroke)
	}
	for _, l := range c.lines {
		b.WriteString(`<polyline fill="none" stroke-linejoin="round" points="`)
		for i, q := range l.pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", q.x, q.y)
		}
		fmt.Fprintf(&b, `" stroke="%s" stroke-width="%g"`, l.color.hex(), l.width)
		if l.dashed {
			b.WriteString(` stroke-dasharray="6 4"`)
		}
		b.WriteString("/>\n")
	}
	anchors := [...]string{"start", "middle", "end"}
	for _, l := range c.labels {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%g" text-anchor="%s" fill="%s">%s</text>`+"\n",
			l.x, l.y, l.size, anchors[l.anchor], l.color.hex(), escapeXML(l.text))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func escapeXML(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}
