package coord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/dvvtext"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
	"github.com/cockroachdb/datadriven"
)

// TestInteractions runs the scripts in testdata/: a coordinator against a
// fake replica set, with no network and no clock. Each script sets up a
// cluster and drives one request at a time:
//
//	cluster self=n1 primaries=(n1,n2,n3) fallbacks=(n4,n5) [down=(..)] [unreachable=(..)] [broken=(..)] [slowsync=(..)] [hintsfull=(..)]
//	copy n2 a.1=x [vv=a:1]        # a node's own copy; "copy n4 for=n2 ..." is a hint
//	put [w=2] [pw=..] [dw=..] [strict] [forwarded] [value=v] [context=(a:1,b:2)] [tombstone]
//	get [r=2] [pr=..] [notfound_ok=false] [strict]
//	deliver [n2 n3 ...]           # the pending calls to these nodes (all, in order, without names) answer
//	fail n2 REASON...             # the pending call to n2 fails with this error
//	silence 500ms                 # that much of the request's time has passed without answers
//	deadline                      # the request's deadline passes
//	finish                        # a finished get's read repair runs
//	copies                        # every copy the fake replica set holds
//
// down nodes are down in the view from the start; unreachable ones fail
// every call as undelivered (and are then marked down); broken ones answer
// every call with an internal error; a hintsfull node refuses every
// hinted write (its hints are at their cap) as overloaded, writing nothing;
// a slowsync node's own write reaches
// its disk only when the script delivers that (-> n1 fsync). Requests last 2 s, so a target is
// silent after 500 ms. The output is the interaction log: the calls the
// coordinator makes (->), the answers it gets, the view and observer
// events, and its decision (=>).
func TestInteractions(t *testing.T) {
	datadriven.Walk(t, "testdata/interactions", func(t *testing.T, path string) {
		h := &harness{t: t}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(d)
		})
		h.stop()
	})
}

// harness plays the network, the clock and the replicas for one
// coordinator. A request's own goroutine (Put or Get, as node would call
// them) runs until its driver blocks for the next event; the harness sends
// one event at a time and waits for the request to block again or return.
type harness struct {
	t   *testing.T
	log strings.Builder

	c        *Coordinator
	replicas *fakeReplicas
	view     *fakeView
	route    Route
	now      time.Duration // the request's time, as the script sets it

	// The request in flight.
	flight   *flight
	pending  []quorum.Target // calls launched and not yet answered
	repaired []string        // read repair's log, gathered from its goroutines
	events   chan func()
	stepped  chan struct{}
	returned chan string
	decided  bool
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(&h.log, format+"\n", args...)
}

func (h *harness) run(d *datadriven.TestData) string {
	h.log.Reset()
	switch d.Cmd {
	case "cluster":
		h.stop()
		h.setup(d)
	case "copy":
		h.setCopy(d)
	case "put":
		h.start(d, h.put(d))
	case "get":
		h.start(d, h.get(d))
	case "deliver", "fail":
		h.answer(d)
	case "silence":
		at, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			d.Fatalf(h.t, "silence DURATION: %v", err)
		}
		h.now = at
		h.step(func() { h.flight.onSilence(at) })
	case "deadline":
		h.step(func() { h.flight.onDeadline() })
	case "finish":
		h.finish(d)
	case "copies":
		h.replicas.dump(h)
	default:
		d.Fatalf(h.t, "unknown command %q", d.Cmd)
	}
	return h.log.String()
}

func (h *harness) setup(d *datadriven.TestData) {
	nodes := func(key string) []string {
		var out []string
		if arg, ok := d.Arg(key); ok {
			for _, v := range arg.Vals {
				if v != "" {
					out = append(out, v)
				}
			}
		}
		return out
	}
	var self string
	d.ScanArgs(h.t, "self", &self)
	h.view = &fakeView{h: h, self: self, down: map[string]bool{}}
	for _, n := range nodes("down") {
		h.view.down[n] = true
	}
	h.replicas = &fakeReplicas{h: h, copies: map[string]dvv.Object{},
		unreachable: map[string]bool{}, broken: map[string]bool{}, slowSync: map[string]bool{}, hintsFull: map[string]bool{}}
	for _, n := range nodes("hintsfull") {
		h.replicas.hintsFull[n] = true
	}
	for _, n := range nodes("slowsync") {
		h.replicas.slowSync[n] = true
	}
	for _, n := range nodes("unreachable") {
		h.replicas.unreachable[n] = true
	}
	for _, n := range nodes("broken") {
		h.replicas.broken[n] = true
	}
	h.route = Route{Primaries: nodes("primaries"), Fallbacks: nodes("fallbacks")}
	c, err := New(DefaultConfig(self), h.replicas, h.view, &fakeObserver{h: h})
	if err != nil {
		d.Fatalf(h.t, "%v", err)
	}
	c.drive = h.drive
	h.c = c
}

func (h *harness) setCopy(d *datadriven.TestData) {
	if len(d.CmdArgs) == 0 {
		d.Fatalf(h.t, "copy NODE [for=PRIMARY] SIBLINGS...")
	}
	node := d.CmdArgs[0].Key
	var sibs []string
	forNode := ""
	for _, a := range d.CmdArgs[1:] {
		switch a.Key {
		case "for":
			forNode = a.Vals[0]
		case "vv":
			sibs = append(sibs, "vv="+strings.Join(a.Vals, ","))
		default:
			sibs = append(sibs, a.String())
		}
	}
	obj, err := dvvtext.ParseObject(sibs)
	if err != nil {
		d.Fatalf(h.t, "%v", err)
	}
	h.replicas.copies[copyName(node, forNode)] = obj
}

// spec reads the request's consistency; unset values are the defaults of
// a three-replica key.
func (h *harness) spec(d *datadriven.TestData) quorum.Spec {
	s := quorum.Spec{N: len(h.route.Primaries), R: 2, W: 2, NotFoundOK: true}
	for key, dst := range map[string]*int{"r": &s.R, "w": &s.W, "pr": &s.PR, "pw": &s.PW, "dw": &s.DW} {
		d.MaybeScanArgs(h.t, key, dst)
	}
	d.MaybeScanArgs(h.t, "notfound_ok", &s.NotFoundOK)
	return s
}

func (h *harness) routeFor(d *datadriven.TestData) Route {
	r := h.route
	r.Sloppy = !d.HasArg("strict")
	return r
}

// put returns the request to run: a put as node would make it.
func (h *harness) put(d *datadriven.TestData) func(context.Context) string {
	w := Write{Key: Key{Bucket: "b", Key: []byte("k")}, Value: []byte("v"), Tombstone: d.HasArg("tombstone")}
	if arg, ok := d.Arg("value"); ok {
		w.Value = []byte(arg.Vals[0])
	}
	if arg, ok := d.Arg("context"); ok {
		w.Context = dvv.VV{}
		for _, e := range arg.Vals {
			actor, n, _ := strings.Cut(e, ":")
			c, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				d.Fatalf(h.t, "context: %v", err)
			}
			w.Context[actor] = c
		}
	}
	spec, route, forwarded := h.spec(d), h.routeFor(d), d.HasArg("forwarded")
	return func(ctx context.Context) string {
		vv, err := h.c.Put(ctx, w, spec, route, forwarded)
		if err != nil {
			return describe(err)
		}
		decoded, derr := wire.DecodeContext(vv)
		if derr != nil {
			return "undecodable context: " + derr.Error()
		}
		return "ok, context " + dvvtext.FormatVV(decoded)
	}
}

func (h *harness) get(d *datadriven.TestData) func(context.Context) string {
	spec, route := h.spec(d), h.routeFor(d)
	return func(ctx context.Context) string {
		res, err := h.c.Get(ctx, Key{Bucket: "b", Key: []byte("k")}, spec, route)
		if err != nil {
			return describe(err)
		}
		return fmt.Sprintf("ok, %s from %v fallbacks %v", dvvtext.FormatObject(res.Object), res.Replicas, res.Fallbacks)
	}
}

// start runs a request on its own goroutine until it blocks waiting for
// an event or returns.
func (h *harness) start(d *datadriven.TestData, req func(context.Context) string) {
	if h.flight != nil && !h.decided {
		d.Fatalf(h.t, "a request is still undecided")
	}
	h.flight, h.pending, h.repaired, h.decided, h.now = nil, nil, nil, false, 0
	h.events = make(chan func())
	h.stepped = make(chan struct{})
	h.returned = make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	go func() {
		defer cancel()
		h.returned <- req(ctx)
	}()
	h.wait()
}

// drive stands in for Coordinator.run: it launches calls by recording
// them, and applies the harness's events one at a time until decided.
func (h *harness) drive(_ context.Context, f *flight, targets []quorum.Target, decided func()) error {
	h.flight = f
	f.launch = func(t quorum.Target) {
		kind := "read"
		switch {
		case t.Node == f.self:
			kind = "fsync"
		case f.req.write != nil:
			kind = "write"
		}
		h.logf("-> %s %s", t, kind)
		h.pending = append(h.pending, t)
	}
	for _, t := range targets {
		f.launch(t)
	}
	for !f.req.done() {
		h.stepped <- struct{}{}
		(<-h.events)()
	}
	err := f.req.err()
	decided()
	return err
}

func (h *harness) wait() {
	select {
	case <-h.stepped:
	case out := <-h.returned:
		h.decided = true
		h.logf("=> %s", out)
	case <-time.After(10 * time.Second):
		h.t.Fatal("the request neither blocked for an event nor returned")
	}
}

// step applies an event: through the request's goroutine while it waits,
// directly once it has returned (as the background loop would).
func (h *harness) step(ev func()) {
	if h.flight == nil {
		h.t.Fatal("no request in flight")
	}
	if h.decided {
		ev()
		return
	}
	h.events <- ev
	h.wait()
}

// answer delivers pending calls: each runs against the fake replica set
// (or fails as the script says) and its result goes to the request.
func (h *harness) answer(d *datadriven.TestData) {
	var names []string
	for _, a := range d.CmdArgs {
		names = append(names, a.Key)
	}
	var failure error
	if d.Cmd == "fail" {
		if len(names) < 2 {
			d.Fatalf(h.t, "fail NODE REASON...")
		}
		failure = errors.New(strings.Join(names[1:], " "))
		switch failure.Error() {
		case "unreachable":
			failure = fmt.Errorf("%w: connection refused", ErrNotDelivered)
		case "timeout":
			failure = fmt.Errorf("%w: deadline", cairn.ErrTimeout)
		}
		names = names[:1]
	}
	if len(names) == 0 {
		for _, t := range h.pending {
			names = append(names, t.Node)
		}
	}
	for _, name := range names {
		i := slices.IndexFunc(h.pending, func(t quorum.Target) bool { return t.Node == name })
		if i < 0 {
			d.Fatalf(h.t, "no call to %s is pending", name)
		}
		t := h.pending[i]
		h.pending = slices.Delete(h.pending, i, i+1)
		var res result
		if failure != nil {
			res = result{node: t.Node, err: failure}
		} else {
			res = h.flight.do(context.Background(), t)
		}
		h.logf("%s: %s", t.Node, describeResult(res, h.flight.req.write != nil))
		h.step(func() { h.flight.onResult(h.now, res) })
	}
}

// finish runs read repair as the background loop does once a get is
// finished.
func (h *harness) finish(d *datadriven.TestData) {
	if !h.decided || !h.flight.req.finished() {
		d.Fatalf(h.t, "finish: the request must be decided and every target answered (or deadline)")
	}
	h.flight.repair()
	slices.Sort(h.repaired)
	for _, line := range h.repaired {
		h.logf("%s", line)
	}
	h.repaired = nil
}

func (h *harness) stop() {
	if h.c != nil {
		h.c.Close()
	}
}

// fakeReplicas holds every node's copy of the one key the scripts use.
// Read repair writes from several goroutines at once: mu guards copies.
type fakeReplicas struct {
	h           *harness
	mu          sync.Mutex
	copies      map[string]dvv.Object // by copyName
	unreachable map[string]bool
	broken      map[string]bool
	slowSync    map[string]bool // their own writes' fsyncs are delivered like answers
	hintsFull   map[string]bool // their hinted writes are refused: hints at their cap
}

// hintCap is a hintsfull node's refusal of a write for owner, which
// changes nothing there.
func (r *fakeReplicas) hintCap(node, owner string) error {
	if owner == "" || !r.hintsFull[node] {
		return nil
	}
	return fmt.Errorf("%w: %s keeps hints for %s up to its cap", cairn.ErrOverloaded, node, owner)
}

func copyName(node, forNode string) string {
	if forNode == "" {
		return node
	}
	return node + " (hint for " + forNode + ")"
}

func (r *fakeReplicas) fault(node string) error {
	switch {
	case r.unreachable[node]:
		return fmt.Errorf("%w: connect to %s: connection refused", ErrNotDelivered, node)
	case r.broken[node]:
		return fmt.Errorf("%w: disk on fire", cairn.ErrInternal)
	}
	return nil
}

func (r *fakeReplicas) Read(_ context.Context, t quorum.Target, _ Key) (Copy, error) {
	if err := r.fault(t.Node); err != nil {
		return Copy{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	obj, found := r.copies[t.Node]
	if h, ok := r.copies[copyName(t.Node, t.For)]; ok && t.For != "" {
		obj, found = dvv.Sync(obj, h), true
	}
	return Copy{Object: obj, Found: found}, nil
}

func (r *fakeReplicas) Write(_ context.Context, t quorum.Target, _ Key, obj dvv.Object, sync bool) (bool, error) {
	if err := r.fault(t.Node); err != nil {
		return false, err
	}
	if err := r.hintCap(t.Node, t.For); err != nil {
		return false, err
	}
	name := copyName(t.Node, t.For)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.copies[name] = dvv.Sync(r.copies[name], obj)
	return sync, nil
}

func (r *fakeReplicas) Mint(_ context.Context, self quorum.Target, w Write, sync bool) (dvv.Object, func() (bool, error), error) {
	if err := r.fault(self.Node); err != nil {
		return dvv.Object{}, nil, err
	}
	name, actor := copyName(self.Node, self.For), self.Node
	if err := r.hintCap(self.Node, self.For); err != nil {
		r.h.logf("mint %s: refused: %v", name, err)
		return dvv.Object{}, nil, err
	}
	if self.For != "" {
		actor = self.Node + "h" // a fallback mints with its hint actor
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, vv := r.copies[name], w.Context
	if a, ahead := vv.Exceeds(cur.VV); ahead {
		if !w.ClampContext {
			err := &ContextAheadError{Actor: a, Counter: vv[a], Held: cur.VV[a]}
			r.h.logf("mint %s: refused: %v", name, err)
			return dvv.Object{}, nil, err
		}
		vv = vv.Clamp(cur.VV)
		r.h.logf("mint %s: context clamped to {%s}", name, dvvtext.FormatVV(vv))
	}
	obj, err := cur.Update(vv, actor, w.Value, w.Tombstone, 0)
	if err != nil {
		r.h.logf("mint %s: %v", name, err)
		return dvv.Object{}, nil, fmt.Errorf("%w: %w", cairn.ErrInternal, err)
	}
	r.copies[name] = obj
	r.h.logf("mint %s: %s", name, dvvtext.FormatObject(obj))
	if !r.slowSync[self.Node] {
		return obj, nil, nil
	}
	// Its fsync is still running: the script delivers it like an answer.
	return obj, func() (bool, error) { return sync, nil }, nil
}

func (r *fakeReplicas) Forward(_ context.Context, node string, w Write) ([]byte, error) {
	if err := r.fault(node); err != nil {
		r.h.logf("forward to %s: %s", node, Reason(err))
		return nil, err
	}
	r.h.logf("forward to %s: coordinated there", node)
	return wire.EncodeContext(dvv.VV{node: 1}), nil
}

func (r *fakeReplicas) dump(h *harness) {
	for _, name := range slices.Sorted(maps.Keys(r.copies)) {
		h.logf("%s: %s", name, dvvtext.FormatObject(r.copies[name]))
	}
}

// fakeView marks a node down on the failures node's view marks down for:
// an undelivered call and silence.
type fakeView struct {
	h    *harness
	self string
	down map[string]bool
}

func (v *fakeView) Up(node string) bool { return node == v.self || !v.down[node] }

func (v *fakeView) Failed(node string, err error) {
	if errors.Is(err, ErrNotDelivered) || errors.Is(err, ErrSilent) {
		if !v.down[node] {
			v.h.logf("view: %s down (%s)", node, Reason(err))
		}
		v.down[node] = true
	}
}

type fakeObserver struct{ h *harness }

func (o *fakeObserver) Forwarded() {}

func (o *fakeObserver) Failover(op string, from, to quorum.Target, why string) {
	o.h.logf("failover: %s replaces %s (%s)", to, from, why)
}

func (o *fakeObserver) ReadRepaired(t quorum.Target, err error) {
	what := "ok"
	if err != nil {
		what = Reason(err)
	}
	o.h.replicas.mu.Lock()
	defer o.h.replicas.mu.Unlock()
	o.h.repaired = append(o.h.repaired, fmt.Sprintf("read repair %s: %s", t, what))
}

func (o *fakeObserver) ContextAhead(read []string, outcome string) {
	o.h.logf("context ahead: read %v, %s", read, outcome)
}

func (o *fakeObserver) Pending(node, outcome string, err error) {
	o.h.logf("pending %s: %s", node, outcome)
}

func describeResult(res result, write bool) string {
	switch {
	case res.err != nil:
		return Reason(res.err)
	case write && res.durable:
		return "ack durable"
	case write:
		return "ack"
	case !res.copy.Found:
		return "not found"
	}
	return dvvtext.FormatObject(res.copy.Object)
}

// describe spells out a failed request with the facts a QuorumError
// carries.
func describe(err error) string {
	var qe *cairn.QuorumError
	if !errors.As(err, &qe) {
		return "error: " + err.Error()
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
	return fmt.Sprintf("%s\n   kind=%s need=%d got=%d of=%d timeout=%t\n   replicas: %s",
		err, qe.Kind, qe.Need, qe.Got, qe.Of, errors.Is(err, cairn.ErrTimeout), strings.Join(outcomes, "; "))
}
