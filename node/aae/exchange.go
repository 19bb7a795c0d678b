package aae

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"go.uber.org/zap"
)

// callTimeout bounds one message of an exchange, the peer's storage
// scan or fsync included.
const callTimeout = 10 * time.Second

// keysPerRound is how many keys the initiator aims to have in one key
// list answer; the responder refuses lists of more than maxKeyList keys
// or maxKeyListBytes bytes (a frame holds at most 65,536 msgpack
// elements, four per key).
const (
	keysPerRound    = 2048
	maxKeyList      = 8192
	maxKeyListBytes = 8 << 20
)

// Result is what one exchange reports.
type Result struct {
	Pair antientropy.Pair
	// Stats are what the exchange found.
	Stats antientropy.ExchangeStats
	// Fetched and Pushed count the objects repaired each way.
	Fetched, Pushed int
	// Busy: the partition was leased to another exchange, here or at the
	// peer; not a failure.
	Busy bool
	Err  error
	Took time.Duration
}

// Keys is the number of keys the exchange found different.
func (r Result) Keys() int {
	return r.Stats.KeysMissingHere + r.Stats.KeysMissingThere + r.Stats.KeysDiffering
}

// exchange compares this node's tree of pair.Partition with the peer's and
// syncs every key that differs, both ways (the pure antientropy.Exchange
// decides what to ask; this does the asking and the syncing). The
// partition is leased on both nodes from the first message after the root
// on, so no other exchange repairs it on either of them meanwhile.
//
// Run starts exchanges as the scheduler allows; Exchange runs one now,
// outside the scheduler's budget (benchmarks, tests).
func (a *AAE) Exchange(ctx context.Context, pair antientropy.Pair) (res Result) {
	start := a.d.Now()
	res.Pair = pair
	defer func() { res.Took = a.d.Now().Sub(start) }()
	if !a.Enabled() {
		res.Err = a.errOff()
		return res
	}
	p, peer := pair.Partition, pair.Peer
	tree, err := a.treeFor(ctx, p)
	if err != nil {
		res.Err = err
		return res
	}
	root, peerKeys, err := a.ask(ctx, peer, p, antientropy.Query{Kind: antientropy.QueryRoot})
	if err != nil {
		res.Err = err
		return res
	}
	x, err := antientropy.NewExchange(tree, a.exchangeConfig(tree, peerKeys))
	if err != nil {
		res.Err = err
		return res
	}
	step, err := x.Feed(root, nil)
	if err != nil {
		res.Err = err
		return res
	}
	if !step.Done {
		if !a.acquire(p, a.d.Name) {
			res.Busy = true
			return res
		}
		defer a.release(p, a.d.Name)
		defer a.endLease(ctx, peer, p)
	}
	for !step.Done {
		q := step.Query
		ans, _, err := a.ask(ctx, peer, p, q)
		if err != nil {
			res.Busy = errors.Is(err, cairn.ErrOverloaded)
			res.Err = err
			return res
		}
		var local []antientropy.KeyVersion
		if q.Kind == antientropy.QueryKeys {
			if local, err = a.keyList(p, q.Segments, 0); err != nil {
				res.Err = err
				return res
			}
		}
		if step, err = x.Feed(ans, local); err != nil {
			res.Err = err
			return res
		}
		if err := a.repair(ctx, peer, p, step.Repair, &res); err != nil {
			res.Busy = errors.Is(err, cairn.ErrOverloaded)
			res.Err = err
			return res
		}
	}
	res.Stats = x.Stats()
	return res
}

// exchangeConfig sizes the key-list rounds so that an answer holds about
// keysPerRound keys, judging by the larger of the two trees.
func (a *AAE) exchangeConfig(tree *antientropy.Tree, peerKeys int64) antientropy.ExchangeConfig {
	shape := tree.Shape()
	perSegment := max(tree.Keys(), peerKeys, 0)/int64(shape.Segments) + 1
	spr := int(min(int64(keysPerRound)/perSegment, int64(antientropy.DefaultExchangeConfig().SegmentsPerRound)))
	return antientropy.ExchangeConfig{SegmentsPerRound: max(spr, 1), MaxKeys: a.cfg.MaxKeysPerExchange}
}

// endLease tells the peer the exchange is over, so its partition is free
// for others before the lease expires. Best effort: an exchange that ends
// with the node's shutdown leaves the lease to expire.
func (a *AAE) endLease(ctx context.Context, peer string, p uint32) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = a.call(ctx, peer, wire.TypeAAEQuery, wire.AAEQueryReq{Partition: p, End: true}, nil)
}

// ask sends one query and returns the answer, and for a root query the
// number of keys the peer's tree holds.
func (a *AAE) ask(ctx context.Context, peer string, p uint32, q antientropy.Query) (antientropy.Answer, int64, error) {
	req := wire.AAEQueryReq{Partition: p, Kind: uint8(q.Kind), Branches: q.Branches, Segments: q.Segments}
	var resp wire.AAEAnswerResp
	if err := a.call(ctx, peer, wire.TypeAAEQuery, req, &resp); err != nil {
		return antientropy.Answer{}, 0, err
	}
	ans := antientropy.Answer{
		Shape: antientropy.Shape{Segments: resp.Segments, Branches: resp.Branches}, Root: resp.Root, Hashes: resp.Hashes,
	}
	if len(resp.KeyList) > 0 {
		ans.Keys = make([]antientropy.KeyVersion, len(resp.KeyList))
		for i, k := range resp.KeyList {
			ans.Keys[i] = antientropy.KeyVersion{Bucket: k.Bucket, Key: k.Key, Version: k.Version}
		}
	}
	return ans, resp.Keys, nil
}

// call is one request of an exchange, counted in bytes both ways.
func (a *AAE) call(ctx context.Context, peer string, t wire.Type, req, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	a.stats.sent.Add(uint64(frameBytes(t, req)))
	if err := a.d.Peers.Call(ctx, peer, t, req, resp); err != nil {
		return err
	}
	if resp != nil {
		a.stats.received.Add(uint64(frameBytes(t+1, resp)))
	}
	return nil
}

var frameBuffers = sync.Pool{New: func() any { return new([]byte) }}

// frameBytes is the size of the frame that carries v: what anti-entropy
// counts as bytes sent or received.
func frameBytes(t wire.Type, v any) int {
	bp := frameBuffers.Get().(*[]byte)
	defer frameBuffers.Put(bp)
	b, err := wire.AppendFrame((*bp)[:0], 0, t, v, math.MaxInt32)
	if err != nil {
		return 0
	}
	if cap(b) <= 1<<20 {
		*bp = b
	}
	return len(b)
}

// keyList reads the keys of partition p whose segments are listed, with
// their versions, in canonical order (the order of the store's scan). A
// positive limit bounds the answer a peer gets: beyond it the list is
// refused as overloaded, and the peer asks for fewer segments.
func (a *AAE) keyList(p uint32, segments []int, limit int) ([]antientropy.KeyVersion, error) {
	set, err := antientropy.NewSegmentSet(a.trees.shape, segments)
	if err != nil {
		return nil, err
	}
	var out []antientropy.KeyVersion
	size := 0
	err = a.d.Store.ScanPartitionFiltered(p, set.Has, func(bucket string, key []byte, obj dvv.Object) (bool, error) {
		if v := antientropy.Version(obj); v != antientropy.Absent {
			out = append(out, antientropy.KeyVersion{Bucket: bucket, Key: key, Version: v})
			size += len(bucket) + len(key) + 12
		}
		if limit > 0 && (len(out) > limit || size > maxKeyListBytes) {
			return false, fmt.Errorf("%w: more than %d keys or %d bytes in the %d segments asked of partition %d",
				cairn.ErrOverloaded, limit, maxKeyListBytes, len(segments), p)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// repair syncs the keys one round found different. What the peer has that
// this replica lacks or holds differently is fetched and synced in; where
// the merge is not what the peer holds, it goes back to the peer, with
// what only this replica has. dvv sync on both sides: nothing is
// overwritten, concurrent writes become siblings.
//
// It streams: objects are fetched one batch at a time, and what goes back
// is pushed as soon as a push batch is full, so a round holds at most one
// fetch answer and one push batch (BatchKeys objects, about BatchBytes,
// within a message's limits), however many keys differ.
func (a *AAE) repair(ctx context.Context, peer string, p uint32, r antientropy.Repair, res *Result) error {
	out := a.newPusher(ctx, peer, p, res)
	want := slices.Concat(r.MissingHere, r.Differ)
	back := make([]wire.AAEObject, 0, min(len(want), a.cfg.BatchKeys))
	for len(want) > 0 {
		batch := want[:min(len(want), a.cfg.BatchKeys)]
		req := wire.AAEFetchReq{Partition: p, Keys: make([]wire.AAEKeyRef, len(batch))}
		for i, kv := range batch {
			req.Keys[i] = wire.AAEKeyRef{Bucket: kv.Bucket, Key: kv.Key}
		}
		var resp wire.AAEFetchResp
		if err := a.call(ctx, peer, wire.TypeAAEFetch, req, &resp); err != nil {
			return err
		}
		if resp.Answered < 1 || resp.Answered > len(batch) || len(resp.Objects) > resp.Answered {
			return fmt.Errorf("%w: anti-entropy fetch of %d keys answered %d with %d objects", cairn.ErrProtocol, len(batch), resp.Answered, len(resp.Objects))
		}
		asked := make(map[string]bool, resp.Answered)
		for _, kv := range batch[:resp.Answered] {
			asked[keyID(kv.Bucket, kv.Key)] = true
		}
		for _, o := range resp.Objects {
			if !asked[keyID(o.Bucket, o.Key)] {
				return fmt.Errorf("%w: anti-entropy fetch answered a key not asked for", cairn.ErrProtocol)
			}
			if err := validObject(o); err != nil {
				return err
			}
		}
		wrote := false
		back = back[:0]
		for _, o := range resp.Objects {
			merged, changed, err := a.syncLocal(p, o.Bucket, o.Key, o.Object)
			if err != nil {
				return err
			}
			wrote = wrote || changed
			res.Fetched++
			a.stats.fetched.Add(1)
			if antientropy.Version(merged) != antientropy.Version(o.Object) {
				back = append(back, wire.AAEObject{Bucket: o.Bucket, Key: o.Key, Object: merged})
			}
		}
		// One fsync for the batch, as hinted handoff does: a crash before
		// it loses nothing the peer does not still hold. It comes before
		// the merges go back, so the peer never holds a merge this
		// replica could lose.
		if wrote {
			if err := a.d.Store.SyncWAL(); err != nil {
				return fmt.Errorf("%w: %w", cairn.ErrInternal, err)
			}
		}
		for _, o := range back {
			if err := out.add(o); err != nil {
				return err
			}
		}
		want = want[resp.Answered:]
	}
	for _, kv := range r.MissingThere {
		obj, found, err := a.d.Store.Get(p, kv.Bucket, kv.Key)
		if err != nil {
			return fmt.Errorf("%w: %w", cairn.ErrInternal, err)
		}
		if found && antientropy.Version(obj) != antientropy.Absent {
			if err := out.add(wire.AAEObject{Bucket: kv.Bucket, Key: kv.Key, Object: obj}); err != nil {
				return err
			}
		}
	}
	return out.flush()
}

// pusher sends a repair's objects to the peer in batches as they come:
// within BatchKeys and BatchBytes (one object alone may pass the bytes)
// and always within what the peer accepts in one message (frame and
// elements: objects with many siblings reach the element limit long
// before the bytes).
type pusher struct {
	a    *AAE
	ctx  context.Context
	peer string
	p    uint32
	res  *Result

	batch []wire.AAEObject
	size  int
	msg   wire.Batch
}

func (a *AAE) newPusher(ctx context.Context, peer string, p uint32, res *Result) *pusher {
	return &pusher{a: a, ctx: ctx, peer: peer, p: p, res: res, msg: wire.Batch{MaxFrame: a.d.MaxFrame}}
}

// add queues o, pushing the batch first when o does not fit in it.
func (w *pusher) add(o wire.AAEObject) error {
	size := objectBytes(o.Object) + len(o.Bucket) + len(o.Key)
	fits := w.msg.Fits(o.Object, o.Bucket, o.Key)
	if len(w.batch) > 0 && (!fits || len(w.batch) >= w.a.cfg.BatchKeys || w.size+size > w.a.cfg.BatchBytes) {
		if err := w.flush(); err != nil {
			return err
		}
		fits = w.msg.Fits(o.Object, o.Bucket, o.Key)
	}
	if !fits {
		// Too large for any message on its own (merges can make such an
		// object): it cannot be pushed; the others still are.
		w.a.tooLarge(w.p, o.Bucket, o.Key, o.Object)
		return nil
	}
	w.batch = append(w.batch, o)
	w.size += size
	w.msg.Add(o.Object, o.Bucket, o.Key)
	return nil
}

// flush pushes what is queued, if anything.
func (w *pusher) flush() error {
	if len(w.batch) == 0 {
		return nil
	}
	var resp wire.AAEPushResp
	if err := w.a.call(w.ctx, w.peer, wire.TypeAAEPush, wire.AAEPushReq{Partition: w.p, Objects: w.batch}, &resp); err != nil {
		return err
	}
	n := len(w.batch)
	w.res.Pushed += n
	w.a.stats.pushed.Add(uint64(n))
	// A fresh slice: the request may still be referenced by the caller
	// of peers (a test's recorder, a retry), and objects must not leak
	// from one batch into the next.
	w.batch, w.size, w.msg = nil, 0, wire.Batch{MaxFrame: w.a.d.MaxFrame}
	return nil
}

// keyID names (bucket, key) unambiguously, for a map.
func keyID(bucket string, key []byte) string {
	return string(binary.AppendUvarint(nil, uint64(len(bucket)))) + bucket + string(key)
}

// syncLocal merges an object into this node's own copy without an fsync
// (the caller syncs the WAL once per batch) and returns the copy after it,
// and whether it changed.
func (a *AAE) syncLocal(p uint32, bucket string, key []byte, obj dvv.Object) (dvv.Object, bool, error) {
	changed := false
	mode := a.d.Mode(bucket)
	merged, err := a.d.Store.ModifyUnsynced(p, bucket, key, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		if found && mode.Descends(cur, obj) {
			return cur, false, nil
		}
		changed = true
		return mode.Sync(cur, obj), true, nil
	})
	if err != nil {
		return dvv.Object{}, false, fmt.Errorf("%w: anti-entropy write: %w", cairn.ErrInternal, err)
	}
	return merged, changed, nil
}

// validObject refuses an object a peer sent that breaks the dot rules
// (dvv.Object.Validate): merging a dot of counter 0, or a sibling its own
// vector does not cover, would make replicas drop writes.
func validObject(o wire.AAEObject) error {
	if err := o.Object.Validate(); err != nil {
		return fmt.Errorf("%w: anti-entropy object of %s/%q breaks the dot rules: %w", cairn.ErrProtocol, o.Bucket, o.Key, err)
	}
	return nil
}

// tooLarge logs an object anti-entropy cannot send in any message: merges
// can make one (client writes are bounded below the limits), and only a
// client's write with its context can shrink it.
func (a *AAE) tooLarge(p uint32, bucket string, key []byte, obj dvv.Object) {
	a.log.Warn("anti-entropy: object too large to send in any message; left out of the repair",
		zap.Uint32("partition", p), zap.String("bucket", bucket), zap.Binary("key", key),
		zap.Int("siblings", len(obj.Siblings)), zap.Int("bytes", obj.MsgpackSize()))
}

// objectBytes approximates an object's encoded size: its values and dots.
func objectBytes(o dvv.Object) int {
	n := 0
	for _, s := range o.Siblings {
		n += len(s.Value) + len(s.Dot.Actor) + 16
	}
	for actor := range o.VV {
		n += len(actor) + 8
	}
	return n
}
