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
}

// Get asks every target of the key in parallel and answers once R of them
// (PR primaries) have answered, with the merge of what came back. It keeps
// listening in the background until every target answered or the deadline
// passed, then repairs every target whose copy was missing or behind the
// merge. Any node may coordinate a get.
func (c *Coordinator) Get(ctx context.Context, k Key, spec quorum.Spec, route Route) (ReadResult, error) {
	targets := quorum.Targets(route.Primaries, route.Fallbacks, c.view.Up, route.Sloppy)
	req := newReadRequest(spec, targets, route, c.view.Up, c.silentAfter(ctx))
	if req.done() {
		// Doomed before it starts (PR primaries are not even targets).
		return ReadResult{}, req.err()
	}
	f := &flight{c: c, op: "get", req: req, key: k}
	var out ReadResult
	err := c.drive(ctx, f, targets, func() { out = readResult(req) })
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
	for _, c := range req.calls {
		if !c.target.Primary && slices.Contains(replicas, c.target.Node) {
			out.Fallbacks = append(out.Fallbacks, c.target.Node)
		}
	}
	return out
}
