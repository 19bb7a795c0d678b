package coord

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
)

// Put coordinates a put or delete here when this node may mint its dot,
// or forwards it to a node that may (DESIGN section 3: dots are minted
// only where the object is stored). forwarded says another node already
// handed the write here: it is coordinated here whatever this node's view,
// so a write is never forwarded twice. It returns the encoded context of
// the object after the write.
//
// A forward moves on to the next candidate only when the previous one
// cannot have received the write; a write forwarded twice would mint two
// dots, and the client would see its one write as two siblings. When every
// candidate was unreachable, the targets are chosen again with what the
// failures taught the view, which may make this node a fallback that
// coordinates itself: a write needs only W reachable nodes. A fallback
// whose hints for the owner are at their cap writes nothing and hands the
// write on to the next fallback in the same way.
//
// The client's context must name only writes that were made: a vector
// naming a counter beyond what an actor minted would cover that actor's
// next writes, and they would vanish wherever they meet the object. Only
// a copy of the key can tell, so the coordinator checks the context
// against its own copy as it mints (see mint): within it, the write goes
// on at no extra cost; beyond it, the coordinator first catches up with
// the other targets' copies, then refuses the write (a primary) or clamps
// the context (a fallback).
func (c *Coordinator) Put(ctx context.Context, w Write, spec quorum.Spec, route Route, forwarded bool) ([]byte, error) {
	var tried []cairn.ReplicaOutcome
	selfFull := false
	for {
		targets := quorum.Targets(route.Primaries, route.Fallbacks, c.view.Up, route.Sloppy)
		candidates := coordinators(targets, c.view.Up)
		if forwarded || (!selfFull && mayCoordinate(c.cfg.Self, candidates)) {
			vv, err := c.coordinate(ctx, w, spec, route, targets)
			var full *hintsFullError
			if forwarded || !errors.As(err, &full) {
				return vv, err
			}
			// This node stands in for every primary and keeps as many
			// hints as its caps allow. Nothing was written here, so
			// another fallback may take the write, as a replica write
			// refused by a full fallback goes to the next one.
			selfFull = true
			tried = append(tried, cairn.ReplicaOutcome{Node: c.cfg.Self, Err: Reason(full.err)})
			continue
		}
		fresh := untried(candidates, tried)
		if len(fresh) == 0 {
			return nil, forwardError(w.Op(), spec, targets, tried)
		}
		c.obs.Forwarded()
		for _, t := range fresh {
			vv, err := c.replicas.Forward(ctx, t.Node, w)
			if err == nil || !errors.Is(err, ErrNotDelivered) {
				return vv, err
			}
			c.view.Failed(t.Node, err)
			tried = append(tried, cairn.ReplicaOutcome{Node: t.Node, Primary: t.Primary, Err: Reason(err)})
		}
	}
}

// coordinate applies the write to this node's copy, minting its dot, then
// sends the new object to every other target and answers once the
// tracker decides.
func (c *Coordinator) coordinate(ctx context.Context, w Write, spec quorum.Spec, route Route, targets []quorum.Target) ([]byte, error) {
	self := quorum.Target{Node: c.cfg.Self, Primary: true}
	for _, t := range targets {
		if t.Node == c.cfg.Self {
			self = t
		}
	}
	req := newWriteRequest(w.Op(), spec, targets, route, c.view.Up, c.silentAfter(ctx))
	if req.done() {
		// Doomed before it starts (PW primaries are not even targets):
		// refuse it without writing anything.
		return nil, req.err()
	}
	sync := c.cfg.SyncWrites || spec.DW > 0
	obj, durable, err := c.mint(ctx, self, w, targets, sync)
	if err != nil {
		if self.For != "" && errors.Is(err, cairn.ErrOverloaded) {
			return nil, &hintsFullError{err: err}
		}
		return nil, err
	}
	// The object goes to the other targets while the local copy reaches
	// the disk: the two waits overlap, and the local acknowledgement is
	// one more answer for the tracker.
	f := &flight{c: c, op: w.Op(), req: req, key: w.Key, obj: obj, sync: sync, self: self.Node, selfDurable: durable}
	calls := make([]quorum.Target, 0, len(targets))
	if durable == nil {
		f.onResult(0, result{node: self.Node, durable: sync})
	} else {
		calls = append(calls, self)
	}
	for _, t := range targets {
		if t.Node != self.Node {
			calls = append(calls, t)
		}
	}
	c.toPending(ctx, w.Key, obj, sync, route.Pending, calls)
	if err := c.drive(ctx, f, calls, func() {}); err != nil {
		return nil, err
	}
	return ResponseContext(w.Mode, obj), nil
}

// ResponseContext is the context a client gets for obj: its vector, and
// in a last-write-wins bucket its stamp too, so that a write made with it
// through any coordinator, even one whose copy has not seen obj yet, is
// stamped later than what the client saw.
//
// A counter's write answers the counter's value in obj instead
// (CounterAnswer): a counter takes no context. A set's context is its
// set clock.
func ResponseContext(mode dvv.Mode, obj dvv.Object) []byte {
	switch mode {
	case dvv.CounterMode:
		v, _ := dvv.CounterOf(obj).Value()
		return CounterAnswer(v)
	case dvv.SetMode:
		// The set's own clock: a remove with it removes exactly the adds
		// this answer's state holds.
		return wire.EncodeSetContext(dvv.SetOf(obj).Clock)
	}
	if mode == dvv.LWW {
		return wire.EncodeContextStamp(obj.VV, obj.Stamp())
	}
	return wire.EncodeContext(obj.VV)
}

// CounterAnswer is how Put answers a counter's value: 8 bytes, big-endian.
func CounterAnswer(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// ReadCounterAnswer reads what CounterAnswer wrote.
func ReadCounterAnswer(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: a counter's answer of %d bytes", cairn.ErrInternal, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// toPending sends the minted object to the pending replicas that are not
// targets already, in the background and within the request's deadline:
// they receive every write, but the client's answer never waits for them.
// A pending replica that is down, or whose write fails, gets the object
// as a hint kept here instead, which handoff delivers once it is up (or,
// if it is removed, to the partition's owners then): without it, a write
// that missed a pending replica after the transfer streamed past its key
// would be missing there at the flip until anti-entropy found it, and a
// read at R=quorum from next owners that lacked it could miss it.
func (c *Coordinator) toPending(ctx context.Context, k Key, obj dvv.Object, sync bool, pending []string, targets []quorum.Target) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.cfg.RepairTimeout)
	}
next:
	for _, node := range pending {
		for _, t := range targets {
			if t.Node == node {
				continue next
			}
		}
		up := c.view.Up(node)
		c.background.Go(func() {
			wctx, cancel := context.WithDeadline(c.lifetime, deadline)
			defer cancel()
			if up {
				_, err := c.replicas.Write(wctx, quorum.Target{Node: node}, k, obj, sync)
				if err == nil {
					c.obs.Pending(node, PendingSent, nil)
					return
				}
				if node == c.cfg.Self {
					c.obs.Pending(node, PendingLost, err)
					return
				}
				c.view.Failed(node, err)
			}
			if _, err := c.replicas.Write(wctx, quorum.Target{Node: c.cfg.Self, For: node}, k, obj, sync); err != nil {
				c.obs.Pending(node, PendingLost, err)
				return
			}
			c.obs.Pending(node, PendingHinted, nil)
		})
	}
}

// mint applies the write to this node's copy. Replicas.Mint refuses a
// context that names writes the copy has not seen (*ContextAheadError).
// That happens to an honest client whose read was answered by other
// replicas while this one missed writes, and to a forged or corrupted
// context. So the coordinator reads the copies of the other targets that
// are up, merges what they hold into its own (as read repair would), and
// mints again. A context still ahead names writes no replica within reach
// has seen:
//
//   - A primary refuses the write as an invalid argument; nothing is
//     written. A context read from a replica that is unreachable now is
//     refused too; reading the key again gives one that is accepted.
//   - A context ahead only in actors this node knows retired and its
//     copy no longer names was read before a prune dropped them
//     (docs/ARCHITECTURE.md, "Pruning retired actors"): it is clamped,
//     which drops exactly those entries. A retired actor never mints
//     again and the prune left no sibling of it, so they cover nothing
//     the write could replace.
//   - A context ahead of a copy that holds no object for the key, when no
//     primary within reach holds one either, was read before the key's
//     tombstone was reaped (or is forged): it is clamped too. Nothing is
//     left that it could replace, and a client that read the tombstone's
//     context must still be able to write the key.
//   - A fallback (self.For set) coordinates only when no primary is up, so
//     the copies that could vouch for the context are out of reach: it
//     clamps the context to what its copy holds and writes. The write then
//     stands beside the writes it meant to replace, as a sibling, rather
//     than be refused when the cluster is degraded; it can never erase a
//     write its copy has not seen.
//
// Within the copy's vector, which is every write made with a context read
// from this node or read after it caught up, the check is one pass over
// the context and costs no read, message or allocation.
func (c *Coordinator) mint(ctx context.Context, self quorum.Target, w Write, targets []quorum.Target, sync bool) (dvv.Object, func() (bool, error), error) {
	obj, durable, err := c.replicas.Mint(ctx, self, w, sync)
	if err == nil {
		return obj, durable, nil
	}
	var ahead *ContextAheadError
	if !errors.As(err, &ahead) {
		return dvv.Object{}, nil, err
	}
	read, err := c.catchUp(ctx, self, w.Key, w.Mode, targets)
	if err != nil {
		return dvv.Object{}, nil, err
	}
	obj, durable, err = c.replicas.Mint(ctx, self, w, sync)
	switch {
	case err == nil:
		c.obs.ContextAhead(read, ContextCaughtUp)
		return obj, durable, nil
	case !errors.As(err, &ahead):
		return dvv.Object{}, nil, err
	case self.For == "" && allPrimariesRead(self, targets, read) && !ahead.Pruned && !ahead.Absent:
		c.obs.ContextAhead(read, ContextRefused)
		return dvv.Object{}, nil, cairn.InvalidArgument("context names writes no reachable replica has seen: "+
			"actor %q counter %d, replicas hold %d; read the key again for a current context", ahead.Actor, ahead.Counter, ahead.Held)
	}
	w.ClampContext = true
	obj, durable, err = c.replicas.Mint(ctx, self, w, sync)
	if err != nil {
		return dvv.Object{}, nil, err
	}
	c.obs.ContextAhead(read, ContextClamped)
	return obj, durable, nil
}

// allPrimariesRead reports whether every primary other than self answered
// the catch-up. Only then may a context that is still ahead be refused:
// every copy that could vouch for it was read. With a primary out of reach
// its copy may hold the writes the context names, and refusing would make
// an honest client's write fail; clamping it instead can only leave the
// write beside what it meant to replace, never hide a write.
func allPrimariesRead(self quorum.Target, targets []quorum.Target, read []string) bool {
	for _, t := range targets {
		if t.For != "" {
			return false // a fallback stands in for a primary that is down
		}
		if t.Primary && t.Node != self.Node && !slices.Contains(read, t.Node) {
			return false
		}
	}
	return true
}

// catchUp reads the copies of the targets other than self that are up, in
// parallel and within a failover delay of the request's time, and merges
// what they hold into this node's copy, through Replicas.Write as read
// repair does. It returns the nodes that answered, in target order. A
// target that fails or answers an object that breaks the dot rules is left
// out: the write is then decided on what the others hold.
func (c *Coordinator) catchUp(ctx context.Context, self quorum.Target, k Key, mode dvv.Mode, targets []quorum.Target) ([]string, error) {
	var others []quorum.Target
	for _, t := range targets {
		if t.Node != self.Node && c.view.Up(t.Node) {
			others = append(others, t)
		}
	}
	if len(others) == 0 {
		return nil, nil
	}
	readCtx, cancel := context.WithTimeout(ctx, c.silentAfter(ctx))
	defer cancel()
	answers := make([]result, len(others))
	var wg sync.WaitGroup
	for i, t := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, err := c.replicas.Read(readCtx, t, k)
			if err == nil && cp.Found && !cp.Omitted {
				if verr := cp.Object.Validate(); verr != nil {
					err = fmt.Errorf("%w: %s answered an object that breaks the dot rules: %w", cairn.ErrProtocol, t.Node, verr)
				}
			}
			answers[i] = result{node: t.Node, copy: cp, err: err}
		}()
	}
	wg.Wait()
	var merged dvv.Object
	var read []string
	for _, a := range answers {
		if a.err != nil {
			c.view.Failed(a.node, a.err)
			continue
		}
		if a.copy.Omitted {
			// A copy too large to send carries its vector without its
			// siblings: merging it would drop them, so it cannot vouch
			// for a context here, and the write clamps rather than refuse.
			continue
		}
		read = append(read, a.node)
		if a.copy.Found {
			merged = mode.Sync(merged, a.copy.Object)
		}
	}
	if merged.Empty() {
		return read, nil
	}
	if _, err := c.replicas.Write(ctx, self, k, merged, false); err != nil {
		return read, err
	}
	return read, nil
}

// hintsFullError is a write this node, coordinating as a fallback,
// refused before writing anything because its hints for the owner are at
// their cap (Replicas.Mint answered overloaded).
type hintsFullError struct{ err error }

func (e *hintsFullError) Error() string { return e.err.Error() }
func (e *hintsFullError) Unwrap() error { return e.err }

// silentAfter is how long a target of this request may stay silent before
// a fallback is asked too: a fraction of the time the request has.
func (c *Coordinator) silentAfter(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return max(c.cfg.MinFailover, time.Duration(c.cfg.FailoverFraction*float64(c.cfg.RepairTimeout)))
	}
	return max(c.cfg.MinFailover, time.Duration(c.cfg.FailoverFraction*float64(time.Until(deadline))))
}

// coordinators lists the targets that may coordinate a write, best first:
// the primaries that are up, then the fallbacks that are up. A fallback
// mints dots only when no primary can (every primary is unreachable), so a
// key's dots come from its primaries whenever one is there.
func coordinators(targets []quorum.Target, up func(string) bool) []quorum.Target {
	out := make([]quorum.Target, 0, len(targets))
	for _, primary := range []bool{true, false} {
		for _, t := range targets {
			if t.Primary == primary && up(t.Node) {
				out = append(out, t)
			}
		}
	}
	return out
}

// mayCoordinate reports whether self should coordinate a write itself: it
// is a primary target, or a fallback target and no primary is up.
func mayCoordinate(self string, candidates []quorum.Target) bool {
	for _, t := range candidates {
		if t.Node == self {
			return t.Primary || !candidates[0].Primary
		}
	}
	return false
}

func untried(candidates []quorum.Target, tried []cairn.ReplicaOutcome) []quorum.Target {
	var out []quorum.Target
next:
	for _, t := range candidates {
		for _, o := range tried {
			if o.Node == t.Node {
				continue next
			}
		}
		out = append(out, t)
	}
	return out
}

// forwardError says that no node that may coordinate the write could be
// reached: nothing was written anywhere. Each target shows why: what its
// forward failed with, or "down" when it was not even tried.
func forwardError(op string, spec quorum.Spec, targets []quorum.Target, tried []cairn.ReplicaOutcome) error {
	outcomes := append([]cairn.ReplicaOutcome(nil), tried...)
	for _, t := range targets {
		if len(untried([]quorum.Target{t}, tried)) == 1 {
			outcomes = append(outcomes, cairn.ReplicaOutcome{Node: t.Node, Primary: t.Primary, Err: "down"})
		}
	}
	return &cairn.QuorumError{Op: op, Kind: "w", Need: spec.W, Got: 0, Of: len(outcomes), Replicas: outcomes}
}
