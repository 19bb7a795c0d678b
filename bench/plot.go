package bench

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The chart is a stack of panels sharing the time axis, so that a dip in
// throughput lines up with the latency spike under it: the throughput of
// all operations (when there are several), then for each operation its
// throughput and its latency percentiles. Each panel's legend sits to its
// right, off the data.

// WritePlot draws the run phase's series as SVG or PNG, by path's
// extension.
func (r *Result) WritePlot(path string) error {
	if err := PlotFormatOK(path); err != nil {
		return err
	}
	panels := r.panels()
	width := vg.Length(10) * vg.Inch
	height := headerHeight + vg.Length(max(len(panels), 1))*panelHeight
	var (
		canvas vg.CanvasWriterTo
		b      bytes.Buffer
	)
	if strings.EqualFold(filepath.Ext(path), ".svg") {
		canvas = vgsvg.New(width, height)
	} else {
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(pngDPI))}
	}
	if err := r.draw(draw.New(canvas), panels); err != nil {
		return err
	}
	if _, err := canvas.WriteTo(&b); err != nil {
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

const (
	pngDPI       = 110
	headerHeight = vg.Length(0.85) * vg.Inch
	panelHeight  = vg.Length(2.3) * vg.Inch
	legendWidth  = vg.Length(1.5) * vg.Inch
)

var (
	black     = color.RGBA{0x22, 0x22, 0x22, 0xff}
	gray      = color.RGBA{0x66, 0x66, 0x66, 0xff}
	gridColor = color.RGBA{0xe3, 0xe3, 0xe3, 0xff}
	errColor  = color.RGBA{0xd7, 0x19, 0x1c, 0xff}
	// One colour per operation and per percentile (Okabe-Ito, readable
	// by colour-blind eyes).
	opColors  = [numOps]color.RGBA{{0x00, 0x72, 0xb2, 0xff}, {0xd5, 0x5e, 0x00, 0xff}, {0x00, 0x9e, 0x73, 0xff}, {0xcc, 0x79, 0xa7, 0xff}}
	pctColors = [3]color.RGBA{{0x00, 0x72, 0xb2, 0xff}, {0xe6, 0x9f, 0x00, 0xff}, {0xcc, 0x79, 0xa7, 0xff}}
)

type pt struct{ x, y float64 }

// series is one line of a panel.
type series struct {
	name   string
	color  color.Color
	dashed bool
	pts    []pt // y NaN where there is no value: the line breaks there
}

// panel is one plot area.
type panel struct {
	title  string
	ylabel string
	logY   bool
	series []series
}

// panels lays out what the run measured.
func (r *Result) panels() []panel {
	p := r.Run
	if p == nil || len(p.Series) == 0 {
		return nil
	}
	ops := sortedOps(p.Ops)
	var out []panel
	if len(ops) > 1 || p.Errors > 0 || r.Config.Rate > 0 {
		all := panel{title: "all operations: throughput", ylabel: "ops/s"}
		all.series = append(all.series, seriesOf("successful", black, p.Series, func(s Point) float64 { return s.OpsPerSec }))
		if p.Errors > 0 {
			all.series = append(all.series, seriesOf("errors", errColor, p.Series, func(s Point) float64 { return s.ErrorsPerSec }))
		}
		if r.Config.Rate > 0 {
			last := p.Series[len(p.Series)-1].T
			all.series = append(all.series, series{name: "target rate", color: gray, dashed: true,
				pts: []pt{{0, r.Config.Rate}, {last, r.Config.Rate}}})
		}
		out = append(out, all)
	}
	for _, name := range ops {
		thr := panel{title: name + ": throughput", ylabel: "ops/s"}
		thr.series = append(thr.series, seriesOf("successful", opColors[opIndex(name)], p.Series,
			func(s Point) float64 { return s.Ops[name].OpsPerSec }))
		if p.Ops[name].Requests > p.Ops[name].OK {
			thr.series = append(thr.series, seriesOf("errors", errColor, p.Series,
				func(s Point) float64 { return float64(s.Ops[name].Errors) / interval(p.Series, s) }))
		}
		lat := panel{title: name + ": latency of successful requests", ylabel: "ms (log scale)", logY: true}
		for i, q := range []struct {
			name string
			at   func(PointOp) int64
		}{
			{"p99.9", func(o PointOp) int64 { return o.P999 }},
			{"p99", func(o PointOp) int64 { return o.P99 }},
			{"p50", func(o PointOp) int64 { return o.P50 }},
		} {
			lat.series = append(lat.series, seriesOf(q.name, pctColors[2-i], p.Series,
				func(s Point) float64 { return msOrNaN(q.at(s.Ops[name])) }))
		}
		out = append(out, thr, lat)
	}
	return out
}

func seriesOf(name string, c color.Color, points []Point, y func(Point) float64) series {
	s := series{name: name, color: c}
	for _, p := range points {
		s.pts = append(s.pts, pt{p.T, y(p)})
	}
	return s
}

// interval is the length of the reporting interval that ends at s.
func interval(points []Point, s Point) float64 {
	prev := 0.0
	for _, p := range points {
		if p.T >= s.T {
			break
		}
		prev = p.T
	}
	if d := s.T - prev; d > 0 {
		return d
	}
	return 1
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

// draw renders the header and the panels on c.
func (r *Result) draw(c draw.Canvas, panels []panel) error {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	r.drawHeader(draw.Crop(c, 0, 0, c.Max.Y-c.Min.Y-headerHeight, 0))
	body := draw.Crop(c, 0, -legendWidth, 0, -headerHeight)
	if len(panels) == 0 {
		c.FillText(textStyle(14, gray, draw.XCenter), vg.Point{X: body.Center().X, Y: body.Center().Y},
			"no data: the run ended before its first reporting interval")
		return nil
	}
	xmax := r.Run.Series[len(r.Run.Series)-1].T
	plots := make([][]*plot.Plot, len(panels))
	legends := make([]plot.Legend, len(panels))
	for i, pn := range panels {
		p, l, err := pn.plot(xmax, i == len(panels)-1)
		if err != nil {
			return err
		}
		plots[i], legends[i] = []*plot.Plot{p}, l
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: 0, PadY: vg.Points(6),
		PadTop: vg.Points(4), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(4)}
	cells := plot.Align(plots, tiles, body)
	for i := range plots {
		cell := cells[i][0]
		plots[i][0].Draw(cell)
		lc := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: cell.Max.X + vg.Points(8), Y: cell.Min.Y},
			Max: vg.Point{X: c.Max.X - vg.Points(4), Y: cell.Max.Y - vg.Points(22)},
		}}
		legends[i].Draw(lc)
	}
	return nil
}

func (r *Result) drawHeader(c draw.Canvas) {
	s := r.Config
	name := "custom mix"
	if s.Workload != "" {
		name = "workload " + strings.ToUpper(s.Workload)
	}
	loop := "closed loop"
	if s.Rate > 0 {
		loop = fmt.Sprintf("open loop at %g ops/s", s.Rate)
	}
	x := c.Min.X + vg.Points(12)
	y := c.Max.Y - vg.Points(10)
	c.FillText(textStyle(17, black, draw.XLeft), vg.Point{X: x, Y: y}, fmt.Sprintf("cairn bench: %s (%s)", name, s.Mix))
	y -= vg.Points(22)
	c.FillText(textStyle(11, gray, draw.XLeft), vg.Point{X: x, Y: y}, fmt.Sprintf("%s keys, %d records of %d B, %d workers, %s, started %s",
		s.Distribution, s.Records, s.ValueSize, s.Concurrency, loop, r.Start.Format("2006-01-02 15:04:05")))
	if p := r.Run; p != nil {
		y -= vg.Points(16)
		line := fmt.Sprintf("%.0f ops/s over %.1fs, %d errors", p.OpsPerSec, p.Seconds, p.Errors)
		if p.Cost != nil && p.Cost.CPU != nil {
			line += fmt.Sprintf("; %.0f µs of node CPU per request", p.Cost.CPU.MicrosPerOp)
		}
		if p.Cost != nil && p.Cost.Traffic != nil {
			line += fmt.Sprintf(", %.0f B sent", p.Cost.Traffic.BytesSentPerOp)
		}
		c.FillText(textStyle(11, gray, draw.XLeft), vg.Point{X: x, Y: y}, line)
	}
}

func textStyle(size vg.Length, c color.Color, align draw.XAlignment) draw.TextStyle {
	return draw.TextStyle{Color: c, Font: font.From(plot.DefaultFont, size), XAlign: align, YAlign: draw.YTop,
		Handler: plot.DefaultTextHandler}
}

// plot builds one panel's plot and legend; only the bottom panel labels
// the time axis.
func (pn panel) plot(xmax float64, bottom bool) (*plot.Plot, plot.Legend, error) {
	p := plot.New()
	p.Title.Text = pn.title
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Title.Padding = vg.Points(4)
	p.Y.Label.Text = pn.ylabel
	p.X.Min, p.X.Max = 0, math.Max(xmax, 1)
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick { return relabel(plot.DefaultTicks{}.Ticks(lo, hi)) })
	if bottom {
		p.X.Label.Text = "seconds since start"
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = gridColor, gridColor
	p.Add(grid)
	lo, hi := pn.yRange()
	p.Y.Min, p.Y.Max = lo, hi
	if pn.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
			var ts []plot.Tick
			for _, v := range logTicks(lo, hi) {
				ts = append(ts, plot.Tick{Value: v, Label: tickText(v)})
			}
			return ts
		})
	} else {
		p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick { return relabel(plot.DefaultTicks{}.Ticks(lo, hi)) })
	}
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = vg.Points(10)
	legend.Padding = vg.Points(4)
	legend.ThumbnailWidth = vg.Points(22)
	for _, s := range pn.series {
		thumb, err := addSeries(p, s)
		if err != nil {
			return nil, legend, err
		}
		legend.Add(s.name, thumb)
	}
	return p, legend, nil
}

// yRange is the panel's y axis: from zero for throughput; from the 1-2-5
// ticks around the data for a log scale.
func (pn panel) yRange() (lo, hi float64) {
	dmin, dmax := math.Inf(1), math.Inf(-1)
	for _, s := range pn.series {
		for _, q := range s.pts {
			if !math.IsNaN(q.y) && !math.IsInf(q.y, 0) && (!pn.logY || q.y > 0) {
				dmin, dmax = math.Min(dmin, q.y), math.Max(dmax, q.y)
			}
		}
	}
	if pn.logY {
		if math.IsInf(dmin, 1) {
			dmin, dmax = 1, 10
		}
		t := logTicks(dmin, dmax)
		return t[0], t[len(t)-1]
	}
	if math.IsInf(dmax, -1) || dmax <= 0 {
		dmax = 1
	}
	return 0, dmax * 1.05
}

// addSeries adds a line, broken where it has no value (a run of one point
// is drawn as a dot), and returns what the legend shows for it.
func addSeries(p *plot.Plot, s series) (plot.Thumbnailer, error) {
	style := draw.LineStyle{Color: s.color, Width: vg.Points(1.6)}
	if s.dashed {
		style.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	}
	legend := &plotter.Line{LineStyle: style}
	for _, run := range splitNaN(s.pts) {
		xys := make(plotter.XYs, len(run))
		for i, q := range run {
			xys[i] = plotter.XY{X: q.x, Y: q.y}
		}
		if len(xys) == 1 {
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: s.color, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
			p.Add(sc)
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.LineStyle = style
		p.Add(l)
	}
	return legend, nil
}

// relabel prints the labelled ticks briefly (1.5k rather than 1500).
func relabel(ts []plot.Tick) []plot.Tick {
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = tickText(ts[i].Value)
		}
	}
	return ts
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
