package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
)

// Replica writes to one peer travel in batches. A coordinator under load
// sends each peer many replica puts at once; sent one message each, every
// one costs a frame, a wake-up of a worker on the peer, a pass through
// its store's commit pipeline and a share of an fsync, and a goroutine
// here waiting for its answer. The batcher queues the puts for a peer and
// lets at most maxBatchesInFlight messages be in flight to it: a put that
// finds one free sends at once (alone, when the node is idle, so an idle
// node's latency is what it was); the puts queued meanwhile go together
// in the next message, as one ReplicaPutBatch that the peer applies in
// one store commit and answers item by item. No timer holds anything
// back: a batch is only what queued while the previous ones were out.

// maxBatchesInFlight is how many batches may be in flight to one peer.
const maxBatchesInFlight = 2

// maxBatchBytes bounds what one batch carries (besides
// wire.MaxReplicaBatch items); a put larger than that goes alone.
const maxBatchBytes = 1 << 20

// batchCallTimeout bounds a batch whose puts carry no deadline.
const batchCallTimeout = 10 * time.Second

// errBatcherClosed fails the puts still queued when the node stops.
var errBatcherClosed = fmt.Errorf("%w: the node is shutting down", cairn.ErrUnavailable)

// batchCaller makes one call to a peer: peerCaller.Call.
type batchCaller func(ctx context.Context, node string, t wire.Type, req, resp any) error

type replicaBatcher struct {
	call     batchCaller
	maxBytes int
	lifetime context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup

	mu     sync.Mutex
	peers  map[string]*peerQueue
	closed bool
}

// peerQueue is one peer's puts not sent yet, and how many senders are
// working on them. While the queue is not empty, a sender is running.
type peerQueue struct {
	queue   []*queuedPut
	senders int
}

// queuedPut is one put waiting for its batch. Its answer goes to done,
// which is buffered so that a sender never waits for a caller that gave
// up, or, for a put made by putAsync, to callback.
type queuedPut struct {
	ctx      context.Context
	req      wire.ReplicaPutReq
	size     int
	done     chan putResult
	callback func(durable bool, err error)
}

// answer hands p its outcome.
func (p *queuedPut) answer(r putResult) {
	if p.callback != nil {
		p.callback(r.durable, r.err)
		return
	}
	p.done <- r
}

type putResult struct {
	durable bool
	err     error
}

func newReplicaBatcher(call batchCaller, maxFrame int) *replicaBatcher {
	ctx, stop := context.WithCancel(context.Background())
	return &replicaBatcher{call: call, maxBytes: min(maxBatchBytes, maxFrame/2), lifetime: ctx, stop: stop,
		peers: make(map[string]*peerQueue)}
}

// put sends req to node in the next batch and waits for its answer, or
// for ctx to end.
func (b *replicaBatcher) put(ctx context.Context, node string, req wire.ReplicaPutReq) (bool, error) {
	p := &queuedPut{ctx: ctx, req: req, size: putSize(&req), done: make(chan putResult, 1)}
	if !b.enqueue(node, p) {
		return false, fmt.Errorf("%w: %w", coord.ErrNotDelivered, errBatcherClosed)
	}
	select {
	case r := <-p.done:
		return r.durable, r.err
	case <-ctx.Done():
		return false, fmt.Errorf("%v to %s: %w", wire.TypeReplicaPut, node, ctxError(ctx))
	}
}

// putAsync is put whose answer goes to done, called once on a sender's
// goroutine (it must not block); when ctx ends before the put is sent,
// done gets that. It returns false, and done is never called, once the
// batcher is closed.
func (b *replicaBatcher) putAsync(ctx context.Context, node string, req wire.ReplicaPutReq, done func(bool, error)) bool {
	return b.enqueue(node, &queuedPut{ctx: ctx, req: req, size: putSize(&req), callback: done})
}

// ctxError says why ctx ended in cairn's terms: a deadline is a timeout.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", cairn.ErrTimeout, err)
	}
	return err
}

// enqueue queues p for node, starting a sender when fewer than
// maxBatchesInFlight are at work for it; false when the batcher is closed.
func (b *replicaBatcher) enqueue(node string, p *queuedPut) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	q := b.peers[node]
	if q == nil {
		q = &peerQueue{}
		b.peers[node] = q
	}
	q.queue = append(q.queue, p)
	start := q.senders < maxBatchesInFlight
	if start {
		q.senders++
		b.wg.Add(1)
	}
	b.mu.Unlock()
	if start {
		go b.send(node, q)
	}
	return true
}

// putSize is about what req adds to a batch's message.
func putSize(req *wire.ReplicaPutReq) int {
	return req.Object.MsgpackSize() + len(req.Bucket) + len(req.Key) + len(req.For) + 64
}

// send is one sender of q: it sends what is queued, batch after batch,
// until the queue is empty.
func (b *replicaBatcher) send(node string, q *peerQueue) {
	defer b.wg.Done()
	var batch []*queuedPut
	for {
		b.mu.Lock()
		batch = b.take(node, q, batch[:0])
		if len(batch) == 0 {
			q.senders--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.sendBatch(node, batch)
		clear(batch)
	}
}

// take moves the first puts of q that fit one batch into batch. A put
// whose context ended is answered so instead of sent.
func (b *replicaBatcher) take(node string, q *peerQueue, batch []*queuedPut) []*queuedPut {
	size, n := 0, 0
	for _, p := range q.queue {
		if len(batch) == wire.MaxReplicaBatch || (len(batch) > 0 && size+p.size > b.maxBytes) {
			break
		}
		n++
		if p.ctx.Err() != nil {
			p.answer(putResult{err: fmt.Errorf("%v to %s: %w", wire.TypeReplicaPut, node, ctxError(p.ctx))})
			continue
		}
		batch = append(batch, p)
		size += p.size
	}
	rest := copy(q.queue, q.queue[n:])
	clear(q.queue[rest:])
	q.queue = q.queue[:rest]
	return batch
}

// sendBatch sends batch to node and hands each put its answer. One put
// alone goes as a plain ReplicaPut.
func (b *replicaBatcher) sendBatch(node string, batch []*queuedPut) {
	ctx, cancel := b.batchContext(batch)
	defer cancel()
	if b.lifetime.Err() != nil {
		for _, p := range batch {
			p.answer(putResult{err: fmt.Errorf("%w: %w", coord.ErrNotDelivered, errBatcherClosed)})
		}
		return
	}
	if len(batch) == 1 {
		var resp wire.ReplicaPutResp
		err := b.call(ctx, node, wire.TypeReplicaPut, batch[0].req, &resp)
		batch[0].answer(putResult{durable: resp.Durable, err: err})
		return
	}
	req := wire.ReplicaPutBatchReq{Items: make([]wire.ReplicaPutReq, len(batch))}
	for i, p := range batch {
		req.Items[i] = p.req
	}
	var resp wire.ReplicaPutBatchResp
	err := b.call(ctx, node, wire.TypeReplicaPutBatch, req, &resp)
	if errors.Is(err, cairn.ErrInvalidArgument) {
		// The peer refused the message as a whole: a node that predates
		// batches (during a rolling upgrade) serves no such type. Each
		// put goes as its own ReplicaPut instead.
		b.sendEach(ctx, node, batch)
		return
	}
	if err == nil && len(resp.Items) != len(batch) {
		err = fmt.Errorf("%w: %s answered %d of a batch of %d replica puts", cairn.ErrProtocol, node, len(resp.Items), len(batch))
	}
	for i, p := range batch {
		if err != nil {
			p.answer(putResult{err: err})
			continue
		}
		r := resp.Items[i]
		if r.Err != nil {
			p.answer(putResult{err: r.Err.Err()})
			continue
		}
		p.answer(putResult{durable: r.Durable})
	}
}

// sendEach sends the puts of batch as single ReplicaPuts, all at once,
// and waits for them.
func (b *replicaBatcher) sendEach(ctx context.Context, node string, batch []*queuedPut) {
	var wg sync.WaitGroup
	for _, p := range batch {
		wg.Go(func() {
			var resp wire.ReplicaPutResp
			err := b.call(ctx, node, wire.TypeReplicaPut, p.req, &resp)
			p.answer(putResult{durable: resp.Durable, err: err})
		})
	}
	wg.Wait()
}

// batchContext lasts until the latest deadline of the batch's puts (the
// calls of a request keep its deadline, not its cancellation), and ends
// at the latest when the batcher closes.
func (b *replicaBatcher) batchContext(batch []*queuedPut) (context.Context, context.CancelFunc) {
	var deadline time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			d = time.Now().Add(batchCallTimeout)
		}
		if d.After(deadline) {
			deadline = d
		}
	}
	return context.WithDeadline(b.lifetime, deadline)
}

// close fails what is still queued, cuts off the batches in flight and
// waits for the senders.
func (b *replicaBatcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.stop()
	b.wg.Wait()
}

// serveReplicaPutBatch applies a peer's batch of replica puts: each is
// checked as a ReplicaPut is, and those that pass are applied together
// (replicaSet.syncBatch). An item that fails gets its error; the others
// are applied all the same.
func (n *Node) serveReplicaPutBatch(ctx context.Context, peer transport.Peer, req wire.ReplicaPutBatchReq) (wire.ReplicaPutBatchResp, error) {
	if peer.Node == "" {
		return wire.ReplicaPutBatchResp{}, cairn.InvalidArgument("replica messages are for peers: the handshake named no node")
	}
	errs := make([]error, len(req.Items))
	for i := range req.Items {
		it := &req.Items[i]
		if err := n.checkReplicaRequest(peer, it.Partition, it.Bucket, it.Key); err != nil {
			errs[i] = err
			continue
		}
		if it.For != "" && !validOwner(it.For) {
			errs[i] = cairn.InvalidArgument("for %q is not a node name", it.For)
			continue
		}
		if it.For == n.cfg.Name {
			it.For = "" // a hint for this node is this node's own data
		}
	}
	durable := n.replicas.syncBatch(ctx, req.Items, errs)
	resp := wire.ReplicaPutBatchResp{Items: make([]wire.ReplicaPutResult, len(req.Items))}
	for i, err := range errs {
		if err != nil {
			e := wire.ErrorFor(err)
			resp.Items[i].Err = &e
			continue
		}
		resp.Items[i].Durable = durable[i]
	}
	return resp, nil
}

// syncBatch is localSync for the items of a batch whose errs entry is
// nil: the items for this node's own data are merged in one store commit
// (store.ModifyBatch), synced when any of them asks for it; a fallback's
// hints are committed one by one, and their fsyncs waited for together
// at the end. It sets the errs of the items that fail and returns which
// were made durable.
func (r *replicaSet) syncBatch(ctx context.Context, items []wire.ReplicaPutReq, errs []error) []bool {
	durable := make([]bool, len(items))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
			}
		}
		return durable
	}
	writes := make([]store.BatchWrite, 0, len(items))
	index := make([]int, 0, len(items))
	var waits []hintWait
	defer func() {
		for _, w := range waits {
			if err := w.wait(); err != nil {
				errs[w.i] = fmt.Errorf("%w: replica write: %w", cairn.ErrInternal, err)
				durable[w.i] = false
			}
		}
	}()
	sync := false
	for i := range items {
		it := &items[i]
		if errs[i] != nil {
			continue
		}
		if it.For != "" {
			k := coord.Key{Partition: it.Partition, Bucket: it.Bucket, Key: it.Key}
			var wait store.Durable
			durable[i], wait, errs[i] = r.hintSyncAsync(k, it.Object, it.Sync, it.For)
			if wait != nil {
				waits = append(waits, hintWait{i, wait})
			}
			continue
		}
		if err := it.Object.Validate(); err != nil {
			errs[i] = invalidObject(it.Bucket, it.Key, err)
			continue
		}
		obj, mode := it.Object, r.mode(it.Bucket)
		writes = append(writes, store.BatchWrite{P: it.Partition, Bucket: it.Bucket, Key: it.Key,
			Fn: func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
				if found && mode.Descends(cur, obj) {
					return cur, false, nil
				}
				return mode.Sync(cur, obj), true, nil
			}})
		index = append(index, i)
		sync = sync || it.Sync
	}
	if len(writes) == 0 {
		return durable
	}
	synced := sync || !r.noSync
	for j, err := range r.store.ModifyBatch(writes, synced) {
		i := index[j]
		if err != nil {
			errs[i] = fmt.Errorf("%w: replica write: %w", cairn.ErrInternal, err)
			continue
		}
		durable[i] = synced
	}
	return durable
}

// hintWait is the fsync a hint of a batch still waits for.
type hintWait struct {
	i    int
	wait store.Durable
}

// hintSyncAsync is localSync for a fallback's hint, returning once the
// merge is visible: wait, when not nil, must be called once, and returns
// when the hint is durable.
func (r *replicaSet) hintSyncAsync(k coord.Key, obj dvv.Object, sync bool, forOwner string) (bool, store.Durable, error) {
	if err := obj.Validate(); err != nil {
		return false, nil, invalidObject(k.Bucket, k.Key, err)
	}
	durable := sync || !r.noSync
	mode := r.mode(k.Bucket)
	ref := store.HintRef{Owner: forOwner, Partition: k.Partition, Bucket: k.Bucket, Key: k.Key}
	_, wait, err := r.store.ModifyHintAsync(ref, durable, r.now().UnixNano(), func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		if found && mode.Descends(cur, obj) {
			return cur, false, nil
		}
		return mode.Sync(cur, obj), true, nil
	})
	if capErr := r.hintCap(err); capErr != nil {
		return false, nil, capErr
	}
	if err != nil {
		return false, nil, fmt.Errorf("%w: replica write: %w", cairn.ErrInternal, err)
	}
	r.hintStored()
	return durable, wait, nil
}
