package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// pngScale renders the PNG at twice the chart's size, so text and lines
// stay sharp when zoomed or shown on a dense screen.
const pngScale = 2.0

var (
	goRegularOnce sync.Once
	goRegular     *opentype.Font
	goRegularErr  error
)

func uniform(c rgb) *image.Uniform { return image.NewUniform(color.RGBA{c.r, c.g, c.b, 0xff}) }

// writePNG rasterises the chart: lines as anti-aliased polygons, text in
// the Go font, which ships inside golang.org/x/image so the picture looks
// the same on every machine.
func (c *chart) writePNG(w io.Writer) error {
	goRegularOnce.Do(func() { goRegular, goRegularErr = opentype.Parse(goregular.TTF) })
	if goRegularErr != nil {
		return fmt.Errorf("plot: load font: %w", goRegularErr)
	}
	img := image.NewRGBA(image.Rect(0, 0, int(c.w*pngScale), int(c.h*pngScale)))
	var z vector.Rasterizer
	for _, r := range c.rects {
		x0, y0 := int(math.Round(r.x*pngScale)), int(math.Round(r.y*pngScale))
		x1, y1 := int(math.Round((r.x+r.w)*pngScale)), int(math.Round((r.y+r.h)*pngScale))
		draw.Draw(img, image.Rect(x0, y0, x1, y1), uniform(r.fill), image.Point{}, draw.Src)
		if r.stroke != nil {
			frame := []pt{{r.x, r.y}, {r.x + r.w, r.y}, {r.x + r.w, r.y + r.h}, {r.x, r.y + r.h}, {r.x, r.y}}
			strokePolyline(img, &z, frame, 1, *r.stroke, false)
		}
	}
	for _, l := range c.lines {
		strokePolyline(img, &z, l.pts, l.width, l.color, l.dashed)
	}
	faces := map[float64]font.Face{}
	defer func() {
		for _, f := range faces {
			_ = f.Close()
		}
	}()
	for _, l := range c.labels {
		face, ok := faces[l.size]
		if !ok {
			var err error
			face, err = opentype.NewFace(goRegular, &opentype.FaceOptions{Size: l.size * pngScale, DPI: 72, Hinting: font.HintingFull})
			if err != nil {
				return fmt.Errorf("plot: font face: %w", err)
			}
			faces[l.size] = face
		}
		d := font.Drawer{Dst: img, Src: uniform(l.color), Face: face}
		x := fixed.Int26_6(l.x * pngScale * 64)
		switch l.anchor {
		case anchorMiddle:
			x -= d.MeasureString(l.text) / 2
		case anchorEnd:
			x -= d.MeasureString(l.text)
		}
		d.Dot = fixed.Point26_6{X: x, Y: fixed.Int26_6(l.y * pngScale * 64)}
		d.DrawString(l.text)
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	return enc.Encode(w, img)
}

// strokePolyline draws a line width (chart units) wide through pts: a quad
// per segment (per dash when dashed) and a disc at every joint. Each
// segment is rasterised on its own, within its own small bounds: one mask
// over a long line's whole bounding box costs far more.
func strokePolyline(img *image.RGBA, z *vector.Rasterizer, pts []pt, width float64, c rgb, dashed bool) {
	hw := width * pngScale / 2
	src := uniform(c)
	segment := func(a, b pt) []pt {
		dx, dy := b.x-a.x, b.y-a.y
		l := math.Hypot(dx, dy)
		if l == 0 {
			return nil
		}
		nx, ny := -dy/l*hw, dx/l*hw
		return []pt{{a.x + nx, a.y + ny}, {b.x + nx, b.y + ny}, {b.x - nx, b.y - ny}, {a.x - nx, a.y - ny}}
	}
	dash, gap := 6*pngScale, 4*pngScale
	var along float64 // distance into the dash pattern
	for i := 1; i < len(pts); i++ {
		a := pt{pts[i-1].x * pngScale, pts[i-1].y * pngScale}
		b := pt{pts[i].x * pngScale, pts[i].y * pngScale}
		var polys [][]pt
		if !dashed {
			polys = append(polys, segment(a, b))
			if i < len(pts)-1 && width*pngScale > 1.5 {
				polys = append(polys, disc(b, hw))
			}
		} else {
			l := math.Hypot(b.x-a.x, b.y-a.y)
			for s := 0.0; s < l; {
				period := math.Mod(along, dash+gap)
				var step float64
				if period < dash {
					step = math.Min(dash-period, l-s)
					polys = append(polys, segment(lerp(a, b, s/l), lerp(a, b, (s+step)/l)))
				} else {
					step = math.Min(dash+gap-period, l-s)
				}
				s += step
				along += step
			}
		}
		fillPolygons(img, z, polys, src)
	}
}

// fillPolygons rasterises polygons as one mask over their bounds, all wound
// the same way so that overlaps add up instead of cancelling.
func fillPolygons(img *image.RGBA, z *vector.Rasterizer, polys [][]pt, src image.Image) {
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, poly := range polys {
		for _, q := range poly {
			minX, minY = math.Min(minX, q.x), math.Min(minY, q.y)
			maxX, maxY = math.Max(maxX, q.x), math.Max(maxY, q.y)
		}
	}
	if math.IsInf(minX, 1) {
		return
	}
	bounds := image.Rect(int(math.Floor(minX))-1, int(math.Floor(minY))-1, int(math.Ceil(maxX))+1, int(math.Ceil(maxY))+1).Intersect(img.Bounds())
	if bounds.Empty() {
		return
	}
	z.Reset(bounds.Dx(), bounds.Dy())
	ox, oy := float64(bounds.Min.X), float64(bounds.Min.Y)
	for _, poly := range polys {
		if len(poly) < 3 {
			continue
		}
		if signedArea(poly) < 0 {
			for i, j := 0, len(poly)-1; i < j; i, j = i+1, j-1 {
				poly[i], poly[j] = poly[j], poly[i]
			}
		}
		z.MoveTo(float32(poly[0].x-ox), float32(poly[0].y-oy))
		for _, q := range poly[1:] {
			z.LineTo(float32(q.x-ox), float32(q.y-oy))
		}
		z.ClosePath()
	}
	z.Draw(img, bounds, src, image.Point{})
}

func lerp(a, b pt, t float64) pt { return pt{a.x + (b.x-a.x)*t, a.y + (b.y-a.y)*t} }

// disc is an octagon of radius r around c: a round-enough joint.
func disc(c pt, r float64) []pt {
	out := make([]pt, 8)
	for i := range out {
		a := float64(i) * math.Pi / 4
		out[i] = pt{c.x + r*math.Cos(a), c.y + r*math.Sin(a)}
	}
	return out
}

func signedArea(poly []pt) float64 {
	var a float64
	for i := range poly {
		j := (i + 1) % len(poly)
		a += poly[i].x*poly[j].y - poly[j].x*poly[i].y
	}
	return a / 2
}
