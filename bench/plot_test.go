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
		Run:    &PhaseResult{Seconds: 30, OpsPerSec: 9000, Ops: map[string]*OpResult{"read": {}, "update": {}}},
	}
	for i := 1; i <= 30; i++ {
		read := PointOp{OpsPerSec: 5000, P50: 400, P99: 2000}
		update := PointOp{OpsPerSec: 4000, P50: 900, P99: 5000}
		switch i {
		case 12:
			read, update.OpsPerSec = PointOp{OpsPerSec: 800, P50: 3000, P99: 250_000, Errors: 3}, 700
		case 20:
			update = PointOp{}
		}
		res.Run.Series = append(res.Run.Series, Point{T: float64(i), OpsPerSec: read.OpsPerSec + update.OpsPerSec,
			Errors: read.Errors, Ops: map[string]PointOp{"read": read, "update": update}})
	}
	return res
}

func TestPlotSVG(t *testing.T) {
	res := plotResult()
	path := filepath.Join(t.TempDir(), "p.svg")
	require.NoError(t, res.WritePlot(path))
	counts, text := parseSVG(t, path)
	// Per panel: grid and tick lines, plus one line per series and legend
	// entry; 3 throughput series and 4 latency ones here.
	require.Greater(t, counts["polyline"], 2*7)
	for _, want := range []string{"cairn bench: workload A", "throughput", "latency", "seconds since start",
		"all ops", "read", "update", "read p99", "update p50"} {
		require.Contains(t, text, want)
	}
}

func TestPlotSVGWithoutData(t *testing.T) {
	res := &Result{Config: Settings{Mix: "read=1"}}
	path := filepath.Join(t.TempDir(), "p.svg")
	require.NoError(t, res.WritePlot(path))
	_, text := parseSVG(t, path)
	require.Contains(t, text, "no data")
}

func TestPlotPNG(t *testing.T) {
	res := plotResult()
	path := filepath.Join(t.TempDir(), "p.png")
	require.NoError(t, res.WritePlot(path))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, int(chartW*pngScale), int(chartH*pngScale)), img.Bounds())
	// Something was drawn inside the throughput panel besides white.
	colored := 0
	for y := int(118 * pngScale); y < int(375*pngScale); y += 2 {
		for x := int(plotX0 * pngScale); x < int(plotX1*pngScale); x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			if r != g || g != b { // not white, not grey: a series line
				colored++
			}
		}
	}
	require.Positive(t, colored)
}

func TestPlotRefusesOtherFormats(t *testing.T) {
	res := &Result{}
	path := filepath.Join(t.TempDir(), "p.jpg")
	require.ErrorContains(t, res.WritePlot(path), ".svg or .png")
	_, err := os.Stat(path)
	require.True(t, os.IsNotExist(err))
}

func TestTicks(t *testing.T) {
	require.Equal(t, []float64{0, 200, 400, 600, 800, 1000}, linearTicks(0, 950))
	require.Equal(t, []float64{0, 5, 10, 15, 20}, linearTicks(0, 20))
	require.Equal(t, []float64{0.2, 0.5, 1, 2, 5, 10, 20, 50}, logTicks(0.3, 40))
	require.Equal(t, []float64{0.1, 1, 10, 100, 1000, 10000}, logTicks(0.15, 9000))
	require.Equal(t, []float64{1, 2}, logTicks(1, 1))
	require.Equal(t, "1.5k", tickText(1500))
	require.Equal(t, "0.05", tickText(0.05))
	require.Equal(t, "2M", tickText(2e6))
}
