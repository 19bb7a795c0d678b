package integration

import (
	"context"
	"fmt"
	"github.com/chromedp/cdproto/network"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/ring"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The web console, driven by a real headless Chromium against a real
// 3-node `cairn dev`: what an operator sees in each state of a node's
// loss and return. Screenshots of every state go to the artifacts
// directory: $CAIRN_ARTIFACTS/console, else artifacts/console at the
// repository's root.

// chromium finds the browser: $CAIRN_CHROMIUM, else Debian's chromium on
// PATH. CAIRN_REQUIRE_BROWSER=1 (set by .ci/run) turns its absence into a
// failure instead of a skip.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CAIRN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	why := "no chromium on PATH (Debian: apt-get install chromium; or set CAIRN_CHROMIUM): the console's browser test needs a real browser"
	if os.Getenv("CAIRN_REQUIRE_BROWSER") == "1" {
		t.Fatal(why + ", and CAIRN_REQUIRE_BROWSER=1")
	}
	t.Skip(why)
	return ""
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "artifacts")
	if env := os.Getenv("CAIRN_ARTIFACTS"); env != "" {
		dir = env
	}
	dir = filepath.Join(dir, "console")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	return abs
}

// page is one browser tab on the console.
type page struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
}

func openBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1400, 1900),
		chromedp.Flag("disable-dev-shm-usage", true),
		// The dev cluster's admin ports present its throw-away CA's
		// certificates: what a person accepts at the browser's warning.
		chromedp.Flag("ignore-certificate-errors", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as the
	// context of that call: it has no deadline of its own.
	require.NoError(t, chromedp.Do(ctx), "starting %s", exe)
	return ctx
}

// do runs browser actions under a deadline of their own.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// eval evaluates a JavaScript expression in the page under a deadline.
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// waitFor polls the page until the JavaScript expression cond is true, and
// returns how long that took. It fails the test past within.
func (p *page) waitFor(what, cond string, within time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	for {
		ok, err := eval[bool](p, cond)
		if err == nil && ok {
			took := time.Since(start)
			p.t.Logf("page shows %s after %v", what, took.Round(10*time.Millisecond))
			return took
		}
		if time.Since(start) > within {
			p.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
			banner, _ := eval[string](p, `document.getElementById("banner").textContent`)
			status, _ := eval[string](p, `document.getElementById("status-line").textContent`)
			p.t.Fatalf("the page did not show %s within %v (last error: %v; status %q; banner %q)", what, within, err, status, banner)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.artifacts, name+".png")
	require.NoError(p.t, os.WriteFile(path, png, 0o644))
	p.t.Logf("screenshot: %s", path)
}

func (p *page) number(expr string) int {
	p.t.Helper()
	s, err := eval[string](p, expr)
	require.NoError(p.t, err)
	n, err := strconv.Atoi(s)
	require.NoError(p.t, err, "%s = %q", expr, s)
	return n
}

// keysWithPrimary returns count keys of bucket whose two primaries (N=2)
// on the 3-node ring include node.
func keysWithPrimary(t *testing.T, bucket, node string, count int) []string {
	r, err := ring.New(ring.DefaultPartitions, members(3))
	require.NoError(t, err)
	var keys []string
	for i := 0; len(keys) < count; i++ {
		key := fmt.Sprintf("hinted-%d", i)
		primaries, _ := r.Preference(r.KeyPartition(bucket, []byte(key)), 2)
		if contains(primaries, node) {
			keys = append(keys, key)
		}
	}
	return keys
}

func TestConsoleInABrowser(t *testing.T) {
	exe := chromium(t)
	// N=2 on three nodes: a key whose primary is down has a fallback (the
	// third node), which keeps its writes as hints.
	d := startDevCluster(t, 3, "--n", "2", "--handoff-interval", "500ms")
	p := &page{t: t, ctx: openBrowser(t, exe), artifacts: artifactsDir(t)}
	// The dev cluster is secure: its admin ports want the console user's
	// token, which a person types as the password when the browser asks.
	require.NoError(t, p.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + d.adminToken()}})
		return err
	})))
	// The console's address is the one `cairn dev` (and so `make run`)
	// prints.
	var url string
	require.Eventually(t, func() bool {
		out, _ := os.ReadFile(filepath.Join(d.dir, "dev.out"))
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, "Web console: "); ok {
				url, _, _ = strings.Cut(rest, " ")
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "cairn dev printed no console URL")
	require.Equal(t, fmt.Sprintf("https://127.0.0.1:%d/", d.base+201), url)

	require.NoError(t, p.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("members"))))
	loadMs, err := eval[float64](p, `(() => { const n = performance.getEntriesByType("navigation")[0]; return n.loadEventEnd - n.startTime; })()`)
	require.NoError(t, err)
	t.Logf("page load (navigation start to load event): %.1f ms", loadMs)

	p.waitFor("three members alive", `document.querySelectorAll('#members tr[data-node][data-alive="true"][data-answered="true"]').length === 3`, 30*time.Second)
	p.screenshot("1-overview")

	killed := time.Now()
	chaos(t, "kill.sh", "--dev", d.dir, "n3")
	// The page names n3 as not answering from its next refresh, and as
	// down once gossip agrees: both within 10 s of the kill.
	p.waitFor("n3 named as not answering", `document.getElementById("banner").textContent.includes("n3 does not answer") &&
		!!document.querySelector('#members tr[data-node="n3"][data-answered="false"]')`, 10*time.Second-time.Since(killed))
	t.Logf("n3 named as not answering %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	p.waitFor("n3 down", `!!document.querySelector('#members tr[data-node="n3"][data-alive="false"]')`, 10*time.Second-time.Since(killed))
	t.Logf("n3 shown down %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	p.screenshot("2-node-down")

	for i, key := range keysWithPrimary(t, "hinted", "n3", 20) {
		d.mustCLI("put", "--addr", d.addr("n1"), "hinted", key, "v"+strconv.Itoa(i))
	}
	p.waitFor("hints for n3", `Number(document.getElementById("hints-total").dataset.pending) > 0 && !!document.querySelector('#hints-owners tr[data-owner="n3"]')`, 30*time.Second)
	pending := p.number(`document.getElementById("hints-total").dataset.pending`)
	t.Logf("hints pending while n3 is down: %d", pending)
	p.screenshot("3-hints-pending")

	chaos(t, "restart.sh", "--dev", d.dir, "n3")
	p.waitFor("n3 alive again", `!!document.querySelector('#members tr[data-node="n3"][data-alive="true"][data-answered="true"]')`, 60*time.Second)
	p.waitFor("hints drained", `document.getElementById("hints-total").dataset.pending === "0"`, 60*time.Second)
	p.screenshot("4-hints-drained")

	d.mustCLI("put", "--addr", d.addr("n1"), "demo", "greeting", "hello")
	d.mustCLI("put", "--addr", d.addr("n2"), "demo", "greeting", "bonjour")
	require.NoError(t, p.do(
		chromedp.SetValue(chromedp.ID("inspect-bucket"), "demo"),
		chromedp.SetValue(chromedp.ID("inspect-key"), "greeting"),
		chromedp.Click(chromedp.CSS("#inspect-form button"))))
	p.waitFor("two siblings on every primary", `(() => {
		const rs = [...document.querySelectorAll('#inspector .replica')].filter(r => r.querySelector('.role').textContent === "primary");
		return rs.length === 2 && rs.every(r => r.dataset.siblings === "2" && r.querySelectorAll(".sibling").length === 2);
	})()`, 30*time.Second)
	p.screenshot("5-key-inspector")

	// The whole page after all of it: the overview README shows.
	p.waitFor("three members alive at the end", `document.querySelectorAll('#members tr[data-node][data-alive="true"][data-answered="true"]').length === 3`, 30*time.Second)
	p.screenshot("6-overview-after")
}
