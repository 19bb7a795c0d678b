package bench

import (
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/vg"
)

// parseSVG checks the file is well-formed XML with an svg root and returns
// how many of each element it holds and all its text.
func parseSVG(t *testing.T, path string) (map[string]int, string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	d := xml.NewDecoder(f)
	counts := map[string]int{}
	var text strings.Builder
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
				require.Equal(t, "http://www.w3.org/2000/svg", tok.Name.Space)
			}
			counts[tok.Name.Local]++
			for _, a := range tok.Attr {
				require.NotContains(t, a.Value, "NaN", "attribute %s of %s", a.Name.Local, tok.Name.Local)
				require.NotContains(t, a.Value, "Inf", "attribute %s of %s", a.Name.Local, tok.Name.Local)
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	require.Equal(t, "svg", root)
	return counts, text.String()
}

// plotResult is a run of 30 one-second intervals: reads and updates, a
// throughput dip, a latency spike, and an interval without updates.
func plotResult() *Result {
	res := &Result{
		Config: Settings{Workload: "a", Mix: "read=50,update=50", Distribution: Zipfian, Records: 1000, ValueSize: 100, Concurrency: 8},
		Run: &PhaseResult{Seconds: 30, OpsPerSec: 9000, Errors: 3, Ops: map[string]*OpResult{
			"read": {Requests: 150_003, OK: 150_000}, "update": {Requests: 120_000, OK: 120_000}}},
	}
	for i := 1; i <= 30; i++ {
		read := PointOp{OpsPerSec: 5000, P50: 400, P99: 2000, P999: 4000}
		update := PointOp{OpsPerSec: 4000, P50: 900, P99: 5000, P999: 9000}
		errs := 0.0
		switch i {
		case 12:
			read, update.OpsPerSec = PointOp{OpsPerSec: 800, P50: 3000, P99: 250_000, P999: 300_000, Errors: 3}, 700
			errs = 3
		case 20:
			update = PointOp{}
		}
		res.Run.Series = append(res.Run.Series, Point{T: float64(i), OpsPerSec: read.OpsPerSec + update.OpsPerSec,
			Errors: read.Errors, ErrorsPerSec: errs, Ops: map[string]PointOp{"read": read, "update": update}})
	}
	return res
}

// oneOpResult is plotResult with the reads only.
func oneOpResult() *Result {
	res := plotResult()
	res.Config.Workload, res.Config.Mix = "c", "read=100"
	res.Run.Errors = 0
	res.Run.Ops = map[string]*OpResult{"read": {Requests: 150_000, OK: 150_000}}
	for i := range res.Run.Series {
		p := &res.Run.Series[i]
		read := p.Ops["read"]
		read.Errors = 0
		p.Ops = map[string]PointOp{"read": read}
		p.Errors, p.ErrorsPerSec = 0, 0
	}
	return res
}

func TestPlotSVGHasAPanelPerOperation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.svg")
	require.NoError(t, plotResult().WritePlot(path))
	_, text := parseSVG(t, path)
	for _, want := range []string{"cairn bench: workload A (read=50,update=50)", "seconds since start",
		"all operations: throughput", "successful", "errors",
		"read: throughput", "read: latency", "update: throughput", "update: latency", "p50", "p99", "p99.9"} {
		require.Contains(t, text, want)
	}

	one := filepath.Join(t.TempDir(), "one.svg")
	require.NoError(t, oneOpResult().WritePlot(one))
	_, text = parseSVG(t, one)
	require.Contains(t, text, "read: latency")
	require.NotContains(t, text, "update")
	require.NotContains(t, text, "all operations", "one operation is all of them")
}

func TestPlotSVGWithoutData(t *testing.T) {
	res := &Result{Config: Settings{Mix: "read=1"}}
	path := filepath.Join(t.TempDir(), "p.svg")
	require.NoError(t, res.WritePlot(path))
	_, text := parseSVG(t, path)
	require.Contains(t, text, "no data")
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img
}

func TestPlotPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.png")
	require.NoError(t, plotResult().WritePlot(path))
	img := decodePNG(t, path)
	require.Equal(t, 10*pngDPI, img.Bounds().Dx())
	// Two panels per operation and one for all of them, under the header.
	inches := float64((headerHeight + 5*panelHeight) / vg.Inch)
	require.InDelta(t, inches*pngDPI, float64(img.Bounds().Dy()), 2)
	// The series are drawn in colour, not only the grey frame and text.
	colored := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r != g || g != bl {
				colored++
			}
		}
	}
	require.Greater(t, colored, 1000)
}

func TestPlotRefusesOtherFormats(t *testing.T) {
	res := &Result{}
	path := filepath.Join(t.TempDir(), "p.jpg")
	require.ErrorContains(t, res.WritePlot(path), ".svg or .png")
	_, err := os.Stat(path)
	require.True(t, os.IsNotExist(err))
}

func TestTicks(t *testing.T) {
	require.Equal(t, []float64{0.2, 0.5, 1, 2, 5, 10, 20, 50}, logTicks(0.3, 40))
	require.Equal(t, []float64{0.1, 1, 10, 100, 1000, 10000}, logTicks(0.15, 9000))
	require.Equal(t, []float64{1, 2}, logTicks(1, 1))
	require.Equal(t, "1.5k", tickText(1500))
	require.Equal(t, "0.05", tickText(0.05))
	require.Equal(t, "2M", tickText(2e6))
}
