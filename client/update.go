package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cairnkv/cairn"
)

// Resolver merges the siblings of a key (two or more concurrent values)
// into the one value the application means. It must be deterministic and
// must not depend on the order of the siblings; to lose nothing it must be
// a merge (a union, a per-writer maximum), not a choice.
//
// The merge is not written back by Get: Update writes it, with the context
// that covers every sibling it merged, so the siblings collapse into one.
type Resolver func(siblings []Sibling) ([]byte, error)

// LastWriteWins is a Resolver that keeps the sibling written last by the
// coordinators' clocks (ties broken by the larger value, so every client
// picks the same one). It loses every other concurrent write, and clock
// skew between nodes decides which: use it only for values where that is
// acceptable (a cache, a last-seen timestamp). A bucket created with
// conflict "lww" does the same on the nodes, so its reads never have
// siblings to resolve.
func LastWriteWins(siblings []Sibling) ([]byte, error) {
	if len(siblings) == 0 {
		return nil, cairn.InvalidArgument("resolve: no siblings")
	}
	best := siblings[0]
	for _, s := range siblings[1:] {
		if s.WrittenAt.After(best.WrittenAt) || (s.WrittenAt.Equal(best.WrittenAt) && bytes.Compare(s.Value, best.Value) > 0) {
			best = s
		}
	}
	return best.Value, nil
}

// UpdateFunc computes the next value of a key from the current one.
// current.Found is false for a key never written (or deleted);
// current.Value is the resolved value otherwise. Returning an error
// abandons the update: nothing is written and Update returns the error.
type UpdateFunc func(current *Object) (next []byte, err error)

// Update is a read-modify-write: it gets the key (R, PR and NotFoundOK
// apply), merges its siblings with the resolver (the call's, else the
// Config's), calls fn, and puts fn's value (W, PW, DW apply) with the
// context of that read, so the write replaces exactly what fn saw.
//
// cairn has no compare-and-set, so there is nothing to retry: a write that
// raced with this one is not lost, it survives as a sibling of it, and the
// next Update (or Get with a resolver) merges the two. For that to lose
// nothing the value must be mergeable: see the counter in the package
// example and docs/CLIENT.md. A key with siblings and no resolver is
// refused with ErrSiblings, since fn could not see one value.
//
// The put is sent only once (see Put); if it fails, the error says
// whether it may have landed, and calling Update again is safe when fn's
// result merges idempotently.
func (c *Client) Update(ctx context.Context, bucket string, key []byte, fn UpdateFunc, opts ...Option) (Context, error) {
	if fn == nil {
		return nil, cairn.InvalidArgument("update: nil function")
	}
	o, err := c.buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if o.hasCtx {
		return nil, cairn.InvalidArgument("update: Causal is not an option of Update, which writes with the context of its own read")
	}
	// One deadline for the read and the write together.
	ctx, cancel := c.callContext(ctx, &o)
	defer cancel()
	cur, err := c.Get(ctx, bucket, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("update: read: %w", err)
	}
	if cur.ValuesOmitted {
		return nil, fmt.Errorf("update %s/%q: %w: %d siblings; collapse them with a Put or Delete with the read's context first",
			bucket, key, ErrValuesOmitted, cur.SiblingCount)
	}
	if cur.Conflict() {
		return nil, fmt.Errorf("update %s/%q: %w: %d siblings; pass a Resolver (Config.Resolver or WithResolver)",
			bucket, key, ErrSiblings, len(cur.Siblings))
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	return c.Put(ctx, bucket, key, next, append(opts[:len(opts):len(opts)], Causal(cur.Context))...)
}
