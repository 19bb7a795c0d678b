package client

import (
	"context"

	"github.com/cairnkv/cairn/internal/wire"
)

// CounterIncr adds delta (negative to decrement) to the counter under
// bucket/key, in a bucket created with datatype counter, and returns the
// counter's value in the coordinating replica's copy after it (every
// increment that copy has seen; read with CounterGet at R=All for the
// whole cluster's). Write options (W, PW, DW, Timeout) apply.
//
// An increment is not idempotent: one that fails with ErrQuorum,
// ErrTimeout or ErrUnavailable may have been applied (by the coordinator,
// at least) and must not be counted as done or not done; sending it again
// may count it twice. The client resends an increment itself only when it
// cannot have been applied (no connection could be made, or a node
// refused it as overloaded before doing anything). A successful return
// means the increment is in the counter for good: merges never lose it.
func (c *Client) CounterIncr(ctx context.Context, bucket string, key []byte, delta int64, opts ...Option) (int64, error) {
	var resp wire.CounterIncrResp
	if _, err := c.keyCall(ctx, opIncr, bucket, key, nil, opts, func(o *callOptions) exchange {
		req := &wire.CounterIncrReq{Bucket: bucket, Key: key, Delta: delta, Opts: o.wire}
		return exchange{op: opIncr, bucket: bucket, key: key, typ: wire.TypeCounterIncr, req: req, opts: &req.Opts,
			timeout: o.wire.TimeoutMs, resp: &resp, ringVersion: func() uint64 { return 0 }}
	}); err != nil {
		return 0, err
	}
	return resp.Value, nil
}

// Counter is a counter as CounterGet reads it.
type Counter struct {
	// Found is false when no replica that answered holds the counter:
	// Value is then 0.
	Found bool
	Value int64
	// Replicas names the nodes whose copies were merged; Coordinator the
	// node that answered.
	Replicas    []string
	Coordinator string
}

// CounterGet reads a counter: R replicas answer (PR of them primaries) and
// their copies merge by the counter's join, so the value counts every
// increment any of them has seen. With R=All after every increment was
// acknowledged, it counts every acknowledged increment.
func (c *Client) CounterGet(ctx context.Context, bucket string, key []byte, opts ...Option) (*Counter, error) {
	var resp wire.CounterGetResp
	coord, err := c.keyCall(ctx, opGet, bucket, key, nil, opts, func(o *callOptions) exchange {
		req := &wire.CounterGetReq{Bucket: bucket, Key: key, Opts: o.wire}
		return exchange{op: opGet, bucket: bucket, key: key, typ: wire.TypeCounterGet, req: req, opts: &req.Opts,
			timeout: o.wire.TimeoutMs, resp: &resp, ringVersion: func() uint64 { return 0 }}
	})
	if err != nil {
		return nil, err
	}
	return &Counter{Found: resp.Found, Value: resp.Value, Replicas: resp.Replicas, Coordinator: coord}, nil
}

// SetAdd adds element to the set under bucket/key, in a bucket created
// with datatype set, and returns the set's context after it. An add wins
// over a remove that did not observe it: a remove made concurrently, or
// with a context read before the add, leaves the element in. Write
// options apply. Sending an add again is harmless: the element is in the
// set either way.
func (c *Client) SetAdd(ctx context.Context, bucket string, key, element []byte, opts ...Option) (Context, error) {
	return c.setUpdate(ctx, bucket, key, element, false, opts)
}

// SetRemove removes element from the set: the adds of it that the
// Causal context (from SetGet, or an earlier SetAdd or SetRemove) covers.
// An add that context did not see survives, so the element stays when
// someone added it concurrently. Without Causal, it removes the adds the
// coordinating replica's copy holds, which may miss adds other replicas
// took: read with SetGet and pass its context to remove what you saw.
// Sending a remove again is harmless.
func (c *Client) SetRemove(ctx context.Context, bucket string, key, element []byte, opts ...Option) (Context, error) {
	return c.setUpdate(ctx, bucket, key, element, true, opts)
}

func (c *Client) setUpdate(ctx context.Context, bucket string, key, element []byte, remove bool, opts []Option) (Context, error) {
	var resp wire.SetUpdateResp
	if _, err := c.keyCall(ctx, opPut, bucket, key, element, opts, func(o *callOptions) exchange {
		req := &wire.SetUpdateReq{Bucket: bucket, Key: key, Element: element, Remove: remove, Opts: o.wire}
		if remove {
			req.Context = o.causal
		}
		return exchange{op: opPut, bucket: bucket, key: key, typ: wire.TypeSetUpdate, req: req, opts: &req.Opts,
			timeout: o.wire.TimeoutMs, resp: &resp, ringVersion: func() uint64 { return 0 }}
	}); err != nil {
		return nil, err
	}
	return resp.Context, nil
}

// Set is a set as SetGet reads it.
type Set struct {
	// Found is false when no replica that answered holds the set.
	Found bool
	// Elements in byte order.
	Elements [][]byte
	// Context is what SetRemove takes (Causal) to remove what this read
	// saw.
	Context     Context
	Replicas    []string
	Coordinator string
}

// SetGet reads a set: R replicas answer (PR of them primaries) and their
// copies merge by the set's join.
func (c *Client) SetGet(ctx context.Context, bucket string, key []byte, opts ...Option) (*Set, error) {
	var resp wire.SetGetResp
	coord, err := c.keyCall(ctx, opGet, bucket, key, nil, opts, func(o *callOptions) exchange {
		req := &wire.SetGetReq{Bucket: bucket, Key: key, Opts: o.wire}
		return exchange{op: opGet, bucket: bucket, key: key, typ: wire.TypeSetGet, req: req, opts: &req.Opts,
			timeout: o.wire.TimeoutMs, resp: &resp, ringVersion: func() uint64 { return 0 }}
	})
	if err != nil {
		return nil, err
	}
	return &Set{Found: resp.Found, Elements: resp.Elements, Context: resp.Context, Replicas: resp.Replicas, Coordinator: coord}, nil
}
