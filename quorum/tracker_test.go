package quorum

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/dvvtext"
	"github.com/cockroachdb/datadriven"
)

// TestTrackers runs the scripts in testdata/. A script starts a tracker and
// feeds it events, one a line:
//
//	write [op=delete] n=3 w=2 [pw=1] [dw=1] targets=(n1,n4*n2,n3)
//	ack n1 durable
//	fail n2 unreachable
//	timeout
//	add n4*n2                 # a fallback n4 standing in for n2 joins the targets
//	----
//
//	read n=3 r=2 [pr=1] [notfound_ok=false] [lww] targets=(n1,n2,n3)
//	reply n1 a.1=x b.1=y        # siblings actor.counter=value (~ is a tombstone)
//	reply n1 a.1=x@5            # ... with written_at 5 (lww merges by it)
//	reply n2 a.2=z vv=a:2,b:1   # the vector defaults to the siblings' dots
//	reply n3 notfound
//	----
//
// The output shows the tracker's counts after each event, the moment it
// decides, and its final answer. Beyond the recorded output, the harness
// fails if a decision ever changes.
func TestTrackers(t *testing.T) {
	// Named one by one: testdata/ also receives rapid's failure files.
	for _, path := range []string{"testdata/write", "testdata/read"} {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "write":
				return runWrite(t, d)
			case "read":
				return runRead(t, d)
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	}
}

// tracker is what the two trackers share, for the harness.
type tracker interface {
	Add(Target)
	Fail(node, reason string)
	Timeout()
	Done() bool
	Err() error
	String() string
}

func scanSpec(t *testing.T, d *datadriven.TestData) (Spec, []Target) {
	spec := Spec{NotFoundOK: true}
	d.ScanArgs(t, "n", &spec.N)
	for key, dst := range map[string]*int{"r": &spec.R, "w": &spec.W, "pr": &spec.PR, "pw": &spec.PW, "dw": &spec.DW} {
		d.MaybeScanArgs(t, key, dst)
	}
	d.MaybeScanArgs(t, "notfound_ok", &spec.NotFoundOK)
	if d.HasArg("lww") {
		spec.Mode = dvv.LWW
	}
	arg, ok := d.Arg("targets")
	if !ok {
		d.Fatalf(t, "missing targets=(...)")
	}
	var specs []string
	for _, v := range arg.Vals {
		if v != "" {
			specs = append(specs, v)
		}
	}
	return spec, parseTargets(specs)
}

func runWrite(t *testing.T, d *datadriven.TestData) string {
	spec, targets := scanSpec(t, d)
	op := "put"
	d.MaybeScanArgs(t, "op", &op)
	w := NewWriteTracker(op, targets, spec)
	return drive(t, d, w, func(fields []string) bool {
		if fields[0] != "ack" {
			return false
		}
		if len(fields) < 2 || len(fields) > 3 || (len(fields) == 3 && fields[2] != "durable") {
			d.Fatalf(t, "want: ack NODE [durable]")
		}
		w.Ack(fields[1], len(fields) == 3)
		return true
	}, nil)
}

func runRead(t *testing.T, d *datadriven.TestData) string {
	spec, targets := scanSpec(t, d)
	r := NewReadTracker(targets, spec)
	return drive(t, d, r, func(fields []string) bool {
		if fields[0] != "reply" {
			return false
		}
		if len(fields) < 2 {
			d.Fatalf(t, "want: reply NODE notfound|SIBLINGS... [vv=...]")
		}
		if len(fields) == 3 && fields[2] == "notfound" {
			r.Reply(fields[1], dvv.Object{}, false)
			return true
		}
		if live, ok := strings.CutPrefix(fields[2], "omitted:"); ok {
			// reply NODE omitted:LIVE vv=...: a copy too large to send.
			n, err := strconv.Atoi(live)
			obj, err2 := dvvtext.ParseObject(fields[3:])
			if err != nil || err2 != nil {
				d.Fatalf(t, "want: reply NODE omitted:LIVE vv=...")
			}
			r.ReplyOmitted(fields[1], obj.VV, n)
			return true
		}
		obj, err := dvvtext.ParseObject(fields[2:])
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		r.Reply(fields[1], obj, true)
		return true
	}, func(b *strings.Builder) {
		obj, nodes := r.Result()
		fmt.Fprintf(b, "result: %s from [%s]\n", dvvtext.FormatObject(obj), strings.Join(nodes, " "))
		var repairs []string
		for _, tg := range r.Repairs() {
			repairs = append(repairs, tg.String())
		}
		fmt.Fprintf(b, "repairs: [%s]\n", strings.Join(repairs, ", "))
		if vv, live, ok := r.Omitted(); ok {
			fmt.Fprintf(b, "omitted: %s live=%d\n", dvvtext.FormatObject(dvv.Object{VV: vv}), live)
		}
	})
}

// drive feeds the script's events to tr (op handles the events particular
// to one tracker) and reports what it did.
func drive(t *testing.T, d *datadriven.TestData, tr tracker, op func([]string) bool, final func(*strings.Builder)) string {
	var b strings.Builder
	var decision string
	record := func() {
		if !tr.Done() {
			if decision != "" {
				t.Fatalf("%s: tracker undecided after deciding %q", d.Pos, decision)
			}
			return
		}
		now := describe(tr.Err())
		if decision == "" {
			decision = now
			fmt.Fprintf(&b, "  decided: %s\n", now)
		} else if now != decision {
			t.Fatalf("%s: decision changed from %q to %q", d.Pos, decision, now)
		}
	}
	fmt.Fprintf(&b, "start: %s\n", tr)
	record()
	for _, line := range strings.Split(d.Input, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch {
		case op(fields):
		case fields[0] == "fail" && len(fields) >= 2:
			tr.Fail(fields[1], strings.Join(fields[2:], " "))
		case fields[0] == "timeout" && len(fields) == 1:
			tr.Timeout()
		case fields[0] == "add" && len(fields) == 2:
			tr.Add(parseTarget(fields[1]))
		default:
			d.Fatalf(t, "unknown event %q", line)
		}
		fmt.Fprintf(&b, "%s: %s\n", line, tr)
		record()
	}
	if decision == "" {
		b.WriteString("undecided: " + describe(tr.Err()) + "\n")
	}
	if final != nil {
		final(&b)
	}
	return b.String()
}

// describe spells out an outcome with every fact a QuorumError carries.
func describe(err error) string {
	if err == nil {
		return "ok"
	}
	var qe *cairn.QuorumError
	if !errors.As(err, &qe) {
		return "unexpected error type: " + err.Error()
	}
	var outcomes []string
	for _, r := range qe.Replicas {
		role := "fallback"
		if r.Primary {
			role = "primary"
		}
		what := "ok"
		if !r.OK {
			what = r.Err
		}
		outcomes = append(outcomes, fmt.Sprintf("%s %s %s", r.Node, role, what))
	}
	if len(outcomes) == 0 {
		outcomes = append(outcomes, "none")
	}
	return fmt.Sprintf("%s\n    kind=%s need=%d got=%d of=%d timeout=%t\n    replicas: %s",
		err, qe.Kind, qe.Need, qe.Got, qe.Of, errors.Is(err, cairn.ErrTimeout), strings.Join(outcomes, "; "))
}
