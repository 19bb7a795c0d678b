package node

import (
	"context"
	"sync"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/quorum"
)

type replicaResult struct {
	node    string
	durable bool
	obj     dvv.Object
	found   bool
	err     error
}

// fanOut calls every target in parallel, never one after another, on
// goroutines the node owns. The calls keep the request's deadline but not its
// cancellation: replicas still outstanding when the client has its answer
// keep going, so every target gets the write and late read answers still
// feed read repair. The channel is closed after the last call returns.
func (n *Node) fanOut(ctx context.Context, targets []quorum.Target, call func(context.Context, quorum.Target) replicaResult) <-chan replicaResult {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = n.now().Add(n.cfg.RequestTimeout)
	}
	rctx, cancel := context.WithDeadline(n.lifetime, deadline)
	results := make(chan replicaResult, len(targets))
	var wg sync.WaitGroup
	wg.Add(len(targets))
	for _, t := range targets {
		n.background(func() {
			defer wg.Done()
			results <- call(rctx, t)
		})
	}
	n.background(func() {
		wg.Wait()
		cancel()
		close(results)
	})
	return results
}

// background runs fn on a goroutine that Shutdown waits for.
func (n *Node) background(fn func()) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		fn()
	}()
}
