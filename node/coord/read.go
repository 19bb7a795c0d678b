package coord

import (
	"context"
	"slices"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/quorum"
)

// ReadResult is a get's answer: the merge of the copies that came back.
type ReadResult struct {
	Object dvv.Object
	// Replicas names the nodes whose answers were merged, in target
	// order; Fallbacks those of them that answered as fallbacks.
	Replicas  []string
	Fallbacks []string
	// Omitted is set when a copy came without its siblings, too large to
	// send: Object is then the merge of the other copies, OmittedVV joins
	// the vectors of those that came without, and OmittedLive is the most
	// live siblings one of them holds. The answer can carry the context
	// (Object's vector joined with OmittedVV), not the values.
	Omitted     bool
	OmittedVV   dvv.VV
	OmittedLive int
}

// Get asks as many targets of the key as the get needs, in parallel, and
// answers once R of them (PR primaries) have answered, with the merge of
// what came back. A target that fails or stays silent is replaced by one
// not asked yet (then, when sloppy, by a fallback). It keeps listening in
// the background until every target asked answered or the deadline
// passed, then repairs every one whose copy was missing or behind the
// merge. Any node may coordinate a get.
//
// Asking R targets rather than all N saves the third replica's read and
// two messages on every get: what read repair would have found there,
// anti-entropy finds (Config.ReadAll asks all N, as Riak does).
func (c *Coordinator) Get(ctx context.Context, k Key, spec quorum.Spec, route Route) (ReadResult, error) {
	targets := quorum.Targets(route.Primaries, route.Fallbacks, c.view.Up, route.Sloppy)
	asked, spares := targets, []quorum.Target(nil)
	if !c.cfg.ReadAll {
		asked, spares = c.readTargets(targets, spec)
	}
	req := newReadRequest(spec, asked, spares, route, c.view.Up, c.silentAfter(ctx))
	if req.done() {
		// Doomed before it starts (PR primaries are not even targets).
		return ReadResult{}, req.err()
	}
	f := &flight{c: c, op: "get", req: req, key: k}
	var out ReadResult
	err := c.drive(ctx, f, asked, func() { out = readResult(req) })
	if err != nil {
		return ReadResult{}, err
	}
	return out, nil
}

// readResult takes a decided get's answer; the request's state is then
// handed to the background.
func readResult(req *request) ReadResult {
	obj, replicas := req.read.Result()
	out := ReadResult{Object: obj, Replicas: replicas}
	out.OmittedVV, out.OmittedLive, out.Omitted = req.read.Omitted()
	for _, c := range req.calls {
		if !c.target.Primary && slices.Contains(replicas, c.target.Node) {
			out.Fallbacks = append(out.Fallbacks, c.target.Node)
		}
	}
	return out
}

// readTargets orders a get's targets as they are best asked (this node's
// own copy, which costs no message, then the primaries, then fallbacks,
// each in ring order) and splits them into the first max(R, PR) to ask
// and the spares.
func (c *Coordinator) readTargets(targets []quorum.Target, spec quorum.Spec) (asked, spares []quorum.Target) {
	ordered := make([]quorum.Target, 0, len(targets))
	rank := func(t quorum.Target) int {
		switch {
		case t.Node == c.cfg.Self:
			return 0
		case t.Primary:
			return 1
		}
		return 2
	}
	for r := range 3 {
		for _, t := range targets {
			if rank(t) == r {
				ordered = append(ordered, t)
			}
		}
	}
	n := min(len(ordered), max(spec.R, spec.PR))
	return ordered[:n], ordered[n:]
}
