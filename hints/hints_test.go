package hints

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"pgregory.net/rapid"
)

// The scripts in testdata drive a Planner; times are in
// milliseconds for readability.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var p *Planner
		ms := func(s string) int64 {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("bad number %q", s)
			}
			return v * 1e6
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "planner":
				var max, base, cap int
				d.ScanArgs(t, "max", &max)
				d.ScanArgs(t, "base", &base)
				d.ScanArgs(t, "cap", &cap)
				p = &Planner{MaxConcurrent: max, BackoffBase: int64(base) * 1e6, BackoffMax: int64(cap) * 1e6}
				return ""
			case "plan":
				var now string
				d.ScanArgs(t, "now", &now)
				owners := map[string]Owner{}
				for _, line := range strings.Fields(d.Input) {
					name, spec, _ := strings.Cut(line, "=")
					n, alive := spec, true
					if before, ok := strings.CutSuffix(spec, ":down"); ok {
						n, alive = before, false
					}
					pending, err := strconv.Atoi(n)
					if err != nil {
						d.Fatalf(t, "bad owner %q", line)
					}
					owners[name] = Owner{Pending: pending, Alive: alive}
				}
				return fmt.Sprintf("start %v", p.Plan(ms(now), owners))
			case "done":
				var owner, now string
				d.ScanArgs(t, "owner", &owner)
				d.ScanArgs(t, "now", &now)
				retry := "0"
				d.MaybeScanArgs(t, "retry", &retry)
				p.Done(owner, ms(now), !d.HasArg("fail"), ms(retry))
				st := p.owners[owner]
				return fmt.Sprintf("%s: not before %dms, failures %d", owner, st.notBefore/1e6, p.Failures(owner))
			case "wake":
				var now string
				d.ScanArgs(t, "now", &now)
				owners := map[string]Owner{}
				for _, line := range strings.Fields(d.Input) {
					name, n, _ := strings.Cut(line, "=")
					pending, _ := strconv.Atoi(n)
					owners[name] = Owner{Pending: pending, Alive: true}
				}
				if at, ok := p.Wake(ms(now), owners); ok {
					return fmt.Sprintf("wake at %dms", at/1e6)
				}
				return "no wake"
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}

// Whatever happens, the planner never runs more than MaxConcurrent
// deliveries, nor two to one owner.
func TestPlannerBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := &Planner{MaxConcurrent: rapid.IntRange(1, 4).Draw(t, "max"), BackoffBase: 1e6, BackoffMax: 1e9}
		names := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
		running := map[string]bool{}
		now := int64(0)
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			now += rapid.Int64Range(0, 1e8).Draw(t, "dt")
			if len(running) > 0 && rapid.Bool().Draw(t, "finish") {
				for name := range running {
					p.Done(name, now, rapid.Bool().Draw(t, "ok"), 0)
					delete(running, name)
					break
				}
				continue
			}
			owners := map[string]Owner{}
			for _, n := range names {
				owners[n] = Owner{Pending: rapid.IntRange(0, 3).Draw(t, "pending"), Alive: rapid.Bool().Draw(t, "alive")}
			}
			for _, name := range p.Plan(now, owners) {
				if running[name] {
					t.Fatalf("second delivery to %s", name)
				}
				if owners[name].Pending == 0 || !owners[name].Alive {
					t.Fatalf("delivery to %s with %+v", name, owners[name])
				}
				running[name] = true
			}
			if len(running) > p.MaxConcurrent {
				t.Fatalf("%d deliveries at once, max %d", len(running), p.MaxConcurrent)
			}
		}
	})
}
