package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/coord"
	"github.com/cairnkv/cairn/quorum"
)

// replicaSet is how the coordinator reaches the copies of a key
// (coord.Replicas): this node's own copy through the store, every other
// through a peer call. A fallback's copy is the hint it keeps for the
// primary it stands in for.
type replicaSet struct {
	self  string
	store *store.Store
	peers peerCaller
	// batch carries the replica puts to peers (batch.go); nil sends each
	// as its own call.
	batch  *replicaBatcher
	noSync bool // the store skips fsync unless asked (Config.NoSyncWrites)
	now    func() time.Time
	// clock stamps the writes this node coordinates; mode says how a
	// bucket resolves concurrent writes (its conflict property), for the
	// merges of objects that come from peers.
	clock *hlc
	mode  func(bucket string) dvv.Mode
	// limits bound what a client write may leave; maxFrame is what a
	// message to a peer may hold.
	limits   writeLimits
	maxFrame int
	// hintStored counts a hint written here; minted sees every object a
	// client write produced here (the sibling alarm).
	hintStored func()
	minted     func(bucket string, key []byte, obj dvv.Object)
	// refused counts a client write refused by a limit ("siblings" or
	// "size").
	refused func(reason string)
	// hintRefused counts and logs a hinted write refused by a hint cap.
	hintRefused func(err *store.HintCapError)
}

func (r *replicaSet) Read(ctx context.Context, t quorum.Target, k coord.Key) (coord.Copy, error) {
	req := wire.ReplicaGetReq{Partition: k.Partition, Bucket: k.Bucket, Key: k.Key, For: t.For}
	if t.Node == r.self {
		obj, found, err := r.localGet(ctx, req)
		return coord.Copy{Object: obj, Found: found}, err
	}
	var resp wire.ReplicaGetResp
	if err := r.peers.Call(ctx, t.Node, wire.TypeReplicaGet, req, &resp); err != nil {
		return coord.Copy{}, err
	}
	if resp.Omitted {
		// Whatever siblings came along are not the copy's: keep its
		// vector only, so that nothing merges it as an object.
		return coord.Copy{Object: dvv.Object{VV: resp.Object.VV}, Found: true, Omitted: true, Live: max(resp.Live, 0)}, nil
	}
	return coord.Copy{Object: resp.Object, Found: resp.Found}, nil
}

func (r *replicaSet) Write(ctx context.Context, t quorum.Target, k coord.Key, obj dvv.Object, sync bool) (bool, error) {
	if t.Node == r.self {
		return r.localSync(ctx, k, obj, sync, t.For)
	}
	if !wire.ObjectFits(obj, k.Bucket, k.Key, r.maxFrame) {
		// Merges (never client writes, which the limits bound) can make
		// an object no message can carry; sending it would only have the
		// peer close the connection under every other call on it.
		return false, fmt.Errorf("%w: the object (%d siblings, %d bytes) is too large to send to a replica",
			cairn.ErrInternal, len(obj.Siblings), obj.MsgpackSize())
	}
	req := wire.ReplicaPutReq{Partition: k.Partition, Bucket: k.Bucket, Key: k.Key, Object: obj, Sync: sync, For: t.For}
	if r.batch != nil {
		return r.batch.put(ctx, t.Node, req)
	}
	var resp wire.ReplicaPutResp
	if err := r.peers.Call(ctx, t.Node, wire.TypeReplicaPut, req, &resp); err != nil {
		return false, err
	}
	return resp.Durable, nil
}

// WriteAsync is Write to another node with the answer by callback
// (coord.AsyncWriter): the put joins the peer's next batch, and done is
// called by the batcher's sender. Writes to this node, and objects no
// message can carry, are left to Write.
func (r *replicaSet) WriteAsync(ctx context.Context, t quorum.Target, k coord.Key, obj dvv.Object, sync bool, done func(bool, error)) bool {
	if t.Node == r.self || r.batch == nil || !wire.ObjectFits(obj, k.Bucket, k.Key, r.maxFrame) {
		return false
	}
	req := wire.ReplicaPutReq{Partition: k.Partition, Bucket: k.Bucket, Key: k.Key, Object: obj, Sync: sync, For: t.For}
	return r.batch.putAsync(ctx, t.Node, req, done)
}

// Mint applies a client write to this node's copy: it mints a dot and
// replaces exactly the siblings the client's context covers. A primary
// mints with its actor for the partition into its own data; a fallback
// standing in for self.For mints with its hint actor into the hint it
// keeps for that primary. It returns once the write is applied; the
// returned durable waits for its fsync.
//
// The context is checked against the copy under the copy's lock, so that
// no write can slip in between: one that names a write the copy has not
// seen is refused (*coord.ContextAheadError) or, when w.ClampContext says
// so, lowered to the copy's vector. Either way nothing is written that
// covers a dot this copy does not know was minted.
func (r *replicaSet) Mint(ctx context.Context, self quorum.Target, w coord.Write, sync bool) (dvv.Object, func() (bool, error), error) {
	if err := ctx.Err(); err != nil {
		return dvv.Object{}, nil, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
	}
	k := w.Key
	now := r.now().UnixNano()
	// The context check and the limits run on the object the write would
	// leave, under the key's lock: a refused write changes nothing, here or
	// anywhere (the coordinator sends nothing when Mint fails).
	update := func(cur dvv.Object, found bool, actor string) (dvv.Object, bool, error) {
		if !found && self.For == "" {
			// The key may have been reaped here: its dots must not be
			// minted again (store/reap.go).
			floor, err := r.store.ReapFloor(k.Partition, actor)
			if err != nil {
				return dvv.Object{}, false, err
			}
			if floor > 0 {
				cur.VV = dvv.VV{actor: floor}
			}
		}
		if w.Data != nil {
			return r.apply(cur, actor, w)
		}
		vv := w.Context
		if a, ahead := vv.Exceeds(cur.VV); ahead {
			if !w.ClampContext {
				return dvv.Object{}, false, &coord.ContextAheadError{Actor: a, Counter: vv[a], Held: cur.VV[a],
					Pruned: r.pruned(vv, cur.VV), Absent: !found}
			}
			vv = vv.Clamp(cur.VV)
		}
		// The stamp passes everything the copy holds and the client read,
		// in either mode: siblings written so keep the order of their
		// causes, should the bucket turn last-write-wins.
		held := cur.Stamp()
		if err := r.clock.contextStamp(w.Stamp, held); err != nil {
			return dvv.Object{}, false, err
		}
		next, err := cur.Update(vv, actor, w.Value, w.Tombstone, r.clock.stamp(max(held, w.Stamp)))
		if err != nil {
			return dvv.Object{}, false, err
		}
		next = w.Mode.Resolve(next)
		limits := r.limits
		if w.SiblingLimit > 0 {
			limits.siblings = w.SiblingLimit
		}
		if err := limits.check(cur, next); err != nil {
			return dvv.Object{}, false, err
		}
		return next, true, nil
	}
	var obj dvv.Object
	var wait store.Durable
	var err error
	if self.For != "" {
		ref := store.HintRef{Owner: self.For, Partition: k.Partition, Bucket: k.Bucket, Key: k.Key}
		obj, wait, err = r.store.MintHintAsync(ref, sync, now, func(cur dvv.Object, found bool, actor string) (dvv.Object, bool, error) {
			return update(cur, found, actor)
		})
		if err == nil {
			r.hintStored()
		}
	} else {
		var actor string
		actor, err = r.store.Actor(k.Partition)
		if err != nil {
			return dvv.Object{}, nil, fmt.Errorf("%w: actor for partition %d: %w", cairn.ErrInternal, k.Partition, err)
		}
		obj, wait, err = r.store.ModifyAsync(k.Partition, k.Bucket, k.Key, sync, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
			return update(cur, found, actor)
		})
	}
	var refused *limitError
	if errors.As(err, &refused) {
		r.refused(refused.reason)
		return dvv.Object{}, nil, refused.err
	}
	if capErr := r.hintCap(err); capErr != nil {
		return dvv.Object{}, nil, capErr
	}
	if err != nil {
		var ahead *coord.ContextAheadError
		if errors.As(err, &ahead) {
			return dvv.Object{}, nil, ahead
		}
		return dvv.Object{}, nil, fmt.Errorf("%w: write: %w", cairn.ErrInternal, err)
	}
	r.minted(k.Bucket, k.Key, obj)
	durable := sync || !r.noSync
	if !durable {
		// Not synced: nothing to wait for, but the store's count of calls
		// in flight still ends here.
		if err := wait(); err != nil {
			return dvv.Object{}, nil, fmt.Errorf("%w: write: %w", cairn.ErrInternal, err)
		}
		return obj, nil, nil
	}
	return obj, func() (bool, error) {
		if err := wait(); err != nil {
			return false, fmt.Errorf("%w: sync: %w", cairn.ErrInternal, err)
		}
		return true, nil
	}, nil
}

// apply is Mint's update for a datatype operation: the state of cur after
// actor applies w.Data, stored as the one sibling of the copy under a
// dot actor mints now. cur's whole vector is the context, so the sibling
// replaces every sibling cur held (their states are in it: Apply starts
// from their join). The size limit applies as to a put: a counter grows
// by a new actor's entry, a set by its elements.
func (r *replicaSet) apply(cur dvv.Object, actor string, w coord.Write) (dvv.Object, bool, error) {
	op := *w.Data
	op.Clamp = w.ClampContext
	value, err := w.Mode.Apply(cur, actor, op)
	var ahead *dvv.AheadError
	if errors.As(err, &ahead) {
		// A set remove whose context names adds this copy has not seen:
		// the coordinator catches up and tries again, as for a put.
		return dvv.Object{}, false, &coord.ContextAheadError{Actor: ahead.Actor, Counter: ahead.Counter, Held: ahead.Held}
	}
	if err != nil {
		return dvv.Object{}, false, cairn.InvalidArgument("%s: %v", w.Op(), err)
	}
	next, err := cur.Update(cur.VV, actor, value, false, r.clock.stamp(cur.Stamp()))
	if err != nil {
		return dvv.Object{}, false, err
	}
	if err := r.limits.check(cur, next); err != nil {
		return dvv.Object{}, false, err
	}
	return next, true, nil
}

// setContext encodes a set remove's context for a forward: nil (remove
// every add the coordinator holds) stays empty.
func setContext(vv dvv.VV) []byte {
	if vv == nil {
		return nil
	}
	return wire.EncodeSetContext(vv)
}

// pruned reports whether every actor ctx names beyond v is one this node
// knows retired and v does not name at all: entries a prune dropped
// (docs/ARCHITECTURE.md, "Pruning retired actors"), which the coordinator
// clamps rather than refuses.
func (r *replicaSet) pruned(ctx, v dvv.VV) bool {
	for a, c := range ctx {
		if c > v[a] && (v[a] > 0 || !r.store.IsRetired(a)) {
			return false
		}
	}
	return true
}

// Forward hands a write to node to coordinate, marked forwarded so that it
// is not forwarded again.
func (r *replicaSet) Forward(ctx context.Context, node string, w coord.Write) ([]byte, error) {
	k, vv := w.Key, wire.EncodeContextStamp(w.Context, w.Stamp)
	if w.Data != nil && w.Data.Kind != dvv.OpIncr {
		var resp wire.SetUpdateResp
		err := r.peers.Call(ctx, node, wire.TypeSetUpdate, wire.SetUpdateReq{Bucket: k.Bucket, Key: k.Key,
			Element: w.Data.Element, Remove: w.Data.Kind == dvv.OpRemove, Context: setContext(w.Data.Context),
			Opts: w.Opts, Forwarded: true}, &resp)
		return resp.Context, err
	}
	if w.Data != nil {
		var resp wire.CounterIncrResp
		err := r.peers.Call(ctx, node, wire.TypeCounterIncr, wire.CounterIncrReq{Bucket: k.Bucket, Key: k.Key,
			Delta: w.Data.Delta, Opts: w.Opts, Forwarded: true}, &resp)
		return coord.CounterAnswer(resp.Value), err
	}
	if w.Tombstone {
		var resp wire.DeleteResp
		err := r.peers.Call(ctx, node, wire.TypeDelete, wire.DeleteReq{Bucket: k.Bucket, Key: k.Key,
			Context: vv, Opts: w.Opts, Forwarded: true}, &resp)
		return resp.Context, err
	}
	var resp wire.PutResp
	err := r.peers.Call(ctx, node, wire.TypePut, wire.PutReq{Bucket: k.Bucket, Key: k.Key,
		Value: w.Value, Context: vv, Opts: w.Opts, Forwarded: true}, &resp)
	return resp.Context, err
}

// localGet reads this node's copy: its own data, merged with the hint it
// keeps for req.For (or with every hint for the key, for AllHints).
func (r *replicaSet) localGet(ctx context.Context, req wire.ReplicaGetReq) (dvv.Object, bool, error) {
	if err := ctx.Err(); err != nil {
		return dvv.Object{}, false, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
	}
	obj, found, err := r.store.Get(req.Partition, req.Bucket, req.Key)
	if err != nil {
		return dvv.Object{}, false, fmt.Errorf("%w: read: %w", cairn.ErrInternal, err)
	}
	var owners []string
	switch {
	case req.AllHints:
		for owner := range r.store.HintStats() {
			owners = append(owners, owner)
		}
	case req.For != "":
		owners = []string{req.For}
	}
	for _, owner := range owners {
		h, ok, err := r.store.GetHint(store.HintRef{Owner: owner, Partition: req.Partition, Bucket: req.Bucket, Key: req.Key})
		if err != nil {
			return dvv.Object{}, false, fmt.Errorf("%w: read hint: %w", cairn.ErrInternal, err)
		}
		if ok {
			obj, found = r.mode(req.Bucket).Sync(obj, h), true
		}
	}
	return obj, found, nil
}

// localSync merges a replicated object into the local copy: this node's
// own data, or, when it stands in for the primary named by forOwner, the
// hint it keeps for that primary, as the bucket's conflict mode merges. It
// never overwrites: what the local copy holds that the incoming one has
// not seen survives as siblings, or, in a last-write-wins bucket, wins
// when it is the later write. Nothing is
// written when the local copy already descends the incoming one, nor when
// the incoming one breaks the dot rules (dvv.Object.Validate): a peer's
// replica put, read repair, or the merge a coordinator caught up with.
func (r *replicaSet) localSync(ctx context.Context, k coord.Key, obj dvv.Object, sync bool, forOwner string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", cairn.ErrTimeout, err)
	}
	if err := obj.Validate(); err != nil {
		return false, invalidObject(k.Bucket, k.Key, err)
	}
	durable := sync || !r.noSync
	mode := r.mode(k.Bucket)
	merge := func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		if found && mode.Descends(cur, obj) {
			return cur, false, nil
		}
		return mode.Sync(cur, obj), true, nil
	}
	var err error
	if forOwner != "" {
		ref := store.HintRef{Owner: forOwner, Partition: k.Partition, Bucket: k.Bucket, Key: k.Key}
		_, err = r.store.ModifyHint(ref, durable, r.now().UnixNano(), merge)
		if err == nil {
			r.hintStored()
		}
	} else {
		_, err = r.store.Modify(k.Partition, k.Bucket, k.Key, durable, merge)
	}
	if capErr := r.hintCap(err); capErr != nil {
		return false, capErr
	}
	if err != nil {
		return false, fmt.Errorf("%w: replica write: %w", cairn.ErrInternal, err)
	}
	return durable, nil
}

// hintCap reports a hinted write the store refused because this node keeps
// as many hints as its caps allow (store.HintCapError): an overloaded
// answer, not an internal error, so that the coordinator fails over to the
// next fallback without marking this node down (it serves everything
// else), and the client's quorum error names the refusal.
func (r *replicaSet) hintCap(err error) error {
	var capErr *store.HintCapError
	if !errors.As(err, &capErr) {
		return nil
	}
	r.hintRefused(capErr)
	return capErr
}

// serveReplicaGet and serveReplicaPut answer peers. Only peers (connections
// whose handshake named a node) may use them.
func (n *Node) serveReplicaGet(ctx context.Context, peer transport.Peer, req wire.ReplicaGetReq) (wire.ReplicaGetResp, error) {
	if err := n.checkReplicaRequest(peer, req.Partition, req.Bucket, req.Key); err != nil {
		return wire.ReplicaGetResp{}, err
	}
	if req.For != "" && !validOwner(req.For) {
		return wire.ReplicaGetResp{}, cairn.InvalidArgument("for %q is not a node name", req.For)
	}
	obj, found, err := n.replicas.localGet(ctx, req)
	if err != nil {
		return wire.ReplicaGetResp{}, err
	}
	return n.replicas.replicaGetAnswer(req, obj, found), nil
}

// replicaGetAnswer shapes a copy for a peer: whole when it fits a
// message, else its version vector and live count only (Omitted), so that
// the coordinator can still answer its client a context that collapses
// the copy.
func (r *replicaSet) replicaGetAnswer(req wire.ReplicaGetReq, obj dvv.Object, found bool) wire.ReplicaGetResp {
	if !found || wire.ObjectFits(obj, req.Bucket, req.Key, r.maxFrame) {
		return wire.ReplicaGetResp{Found: found, Object: obj}
	}
	return wire.ReplicaGetResp{Found: true, Object: dvv.Object{VV: obj.VV}, Omitted: true, Live: len(obj.Live())}
}

func (n *Node) serveReplicaPut(ctx context.Context, peer transport.Peer, req wire.ReplicaPutReq) (wire.ReplicaPutResp, error) {
	if err := n.checkReplicaRequest(peer, req.Partition, req.Bucket, req.Key); err != nil {
		return wire.ReplicaPutResp{}, err
	}
	if req.For != "" && !validOwner(req.For) {
		return wire.ReplicaPutResp{}, cairn.InvalidArgument("for %q is not a node name", req.For)
	}
	if req.For == n.cfg.Name {
		req.For = "" // a hint for this node is this node's own data
	}
	k := coord.Key{Partition: req.Partition, Bucket: req.Bucket, Key: req.Key}
	durable, err := n.replicas.localSync(ctx, k, req.Object, req.Sync, req.For)
	return wire.ReplicaPutResp{Durable: durable}, err
}

// invalidObject refuses an object a peer sent that breaks the dot rules.
// The request is refused, not the connection: other requests share it.
func invalidObject(bucket string, key []byte, err error) error {
	return fmt.Errorf("%w: object of %s/%q breaks the dot rules: %w", cairn.ErrProtocol, bucket, key, err)
}

// validOwner bounds the owner a peer names in a hint: a node name.
func validOwner(name string) bool {
	return name != "" && len(name) <= store.MaxOwnerBytes && !strings.ContainsAny(name, " \t\n/")
}

func (n *Node) checkReplicaRequest(peer transport.Peer, p uint32, bucket string, key []byte) error {
	if peer.Node == "" {
		return cairn.InvalidArgument("replica messages are for peers: the handshake named no node")
	}
	return n.checkKey(p, bucket, key)
}
