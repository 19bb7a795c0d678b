package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/internal/workers"
	"github.com/cairnkv/cairn/quorum"
)

// Key addresses one object: its partition and its name.
type Key struct {
	Partition uint32
	Bucket    string
	Key       []byte
}

// Write is a client's put or delete, decoded and validated.
type Write struct {
	Key       Key
	Value     []byte
	Tombstone bool
	// Context is the client's causal context: the write replaces exactly
	// the siblings it covers.
	Context dvv.VV
	// Opts are the request's options as the client sent them, handed on
	// unchanged when the write is forwarded.
	Opts wire.Options
	// ClampContext is set by the coordinator, never from a request: Mint
	// lowers a context that names writes the copy has not seen to what
	// the copy has seen, instead of refusing it (see Coordinator.Put).
	ClampContext bool
	// SiblingLimit, when above 0, is the bucket's sibling limit, in
	// place of the node's.
	SiblingLimit int
	// Mode is how the bucket resolves concurrent writes: the object the
	// write leaves is resolved by it before it is stored or sent.
	Mode dvv.Mode
	// Stamp is the highest written_at the client's read saw (the
	// context's stamp, 0 when it has none): the write is stamped past it.
	Stamp int64
	// Data, when set, is an operation on a datatype object (Mode is the
	// datatype's): Mint applies it to the copy's state in place of Value.
	// Context is unused; a set remove carries its own (Data.Context),
	// checked against the copy's set clock, and a ContextAheadError from it
	// is caught up with, refused or clamped (ClampContext) as a put's.
	Data *dvv.Op
}

// Op names the operation, as quorum errors show it.
func (w Write) Op() string {
	if w.Data != nil {
		return w.Data.Name()
	}
	if w.Tombstone {
		return "delete"
	}
	return "put"
}

// Route is where a key's replicas live, from the ring: its primaries and,
// in ring order, the fallbacks that may stand in for them.
type Route struct {
	Primaries []string
	Fallbacks []string
	// Pending are replicas a membership change is moving the key to (or
	// away from): each write is sent to them too, after the coordinator
	// minted it, but they are not targets, so their answers count towards
	// no quorum and a pending replica that is down holds up nothing.
	// Reads never ask them.
	Pending []string
	// Sloppy lets fallbacks stand in for primaries that are down or that
	// fail during the request; without it the primaries are the only
	// targets, reachable or not.
	Sloppy bool
}

// Replicas reaches the copies of a key. node implements it: its own copy
// through its store, the others through its peer connections. A fallback's
// copy of a key (a target with For set) is the hint it keeps for that
// primary.
//
// An error that wraps ErrNotDelivered says the request cannot have reached
// the node (the connection could not be made): only then is a forwarded
// write safe to send to another node.
// AsyncWriter is what a Replicas may offer besides Write: a write to
// another node whose outcome comes back by callback, so that no goroutine
// waits for it. WriteAsync returns false when it does not take the write
// (the caller then uses Write); when it returns true, done is called
// exactly once, from any goroutine, and must not block.
type AsyncWriter interface {
	WriteAsync(ctx context.Context, t quorum.Target, k Key, obj dvv.Object, sync bool, done func(durable bool, err error)) bool
}

type Replicas interface {
	// Read returns target t's copy of k.
	Read(ctx context.Context, t quorum.Target, k Key) (Copy, error)
	// Write merges obj into t's copy (by the bucket's conflict mode:
	// dvv sync, or last-write-wins; it never overwrites) and reports
	// whether t made it durable.
	Write(ctx context.Context, t quorum.Target, k Key, obj dvv.Object, sync bool) (durable bool, err error)
	// Mint applies a client's write to this node's own copy (self, a
	// primary or a fallback standing in for self.For), minting a new dot,
	// and returns the object after it as soon as it is applied. When the
	// write still has to reach the disk, durable waits for that (it is
	// called exactly once) and reports whether it did; nil means the
	// write is already as durable as sync asked.
	//
	// A context that names a counter above what the copy's vector holds
	// for some actor (w.Context.Exceeds(copy.VV), checked under the
	// copy's lock) is refused with a *ContextAheadError and changes
	// nothing, unless w.ClampContext is set: the context is then lowered
	// to the copy's vector (Clamp) before the write is applied.
	//
	// The write is stamped later than every write the copy holds and
	// than w.Stamp, and the object it leaves is resolved by w.Mode.
	Mint(ctx context.Context, self quorum.Target, w Write, sync bool) (obj dvv.Object, durable func() (bool, error), err error)
	// Forward hands the write to node to coordinate and returns the
	// encoded context it answered with.
	Forward(ctx context.Context, node string, w Write) ([]byte, error)
}

// Copy is a target's answer to a read.
type Copy struct {
	Object dvv.Object
	// Found is false when the target holds nothing under the key.
	Found bool
	// Omitted says the copy was too large to send: Object holds its
	// version vector only, and Live counts its live siblings. Such a copy
	// counts as an answer but is never merged or repaired.
	Omitted bool
	Live    int
}

// View is the coordinator's knowledge of liveness.
type View interface {
	// Up reports whether node should be asked now. A node always asks
	// itself.
	Up(node string) bool
	// Failed reports that a call to node failed with err, or that node
	// stayed silent (err wraps ErrSilent): the view decides whether that
	// makes it down for the next requests.
	Failed(node string, err error)
}

// Observer hears what the coordinator did; node turns it into metrics.
// Its methods must be quick and must not block.
type Observer interface {
	// Forwarded: this node handed a write to another one.
	Forwarded()
	// Failover: target from failed or stayed silent, and to was asked in
	// its place.
	Failover(op string, from, to quorum.Target, why string)
	// ReadRepaired: the merge of a get was sent to target t; err says how
	// that went.
	ReadRepaired(t quorum.Target, err error)
	// ContextAhead: a write's context named writes this node's copy had
	// not seen, so the copies of the nodes read (those that answered, in
	// target order) were merged into it; outcome says how the write went
	// on: ContextCaughtUp, ContextRefused or ContextClamped.
	ContextAhead(read []string, outcome string)
	// Pending: a write's copy for pending replica node went as outcome
	// says (PendingSent, PendingHinted, PendingLost); err is why it was
	// not sent or not kept.
	Pending(node, outcome string, err error)
}

// The outcomes Pending reports.
const (
	// PendingSent: the pending replica holds the write.
	PendingSent = "sent"
	// PendingHinted: it was down or failed; this node keeps a hint for it.
	PendingHinted = "hinted"
	// PendingLost: neither worked (the hint store refused it): the
	// pending replica gets the key from the stream or anti-entropy only.
	PendingLost = "lost"
)

// The outcomes ContextAhead reports.
const (
	// ContextCaughtUp: the other copies held what the context named; the
	// write went on as the client meant it.
	ContextCaughtUp = "caught_up"
	// ContextRefused: no copy within reach held it; the write was refused
	// with an invalid argument and nothing was written.
	ContextRefused = "refused"
	// ContextClamped: a fallback could not vouch for the context; it was
	// lowered to what the fallback's copy holds, and the write stands
	// beside what it may have meant to replace.
	ContextClamped = "clamped"
)

// ContextAheadError is Mint's refusal of a context that names a write the
// copy has not seen: for Actor, the context names Counter and the copy's
// vector holds Held. It is an invalid argument if nothing resolves it.
type ContextAheadError struct {
	Actor   string
	Counter uint64
	Held    uint64
	// Pruned says every actor the context is ahead in is one the copy's
	// node knows retired and the copy no longer names: a prune dropped
	// its entry, and a context read before the prune still names it.
	Pruned bool
	// Absent says the copy does not hold the key at all. Once no primary
	// within reach holds it either, the key was reaped (its tombstone
	// removed after the bucket's delete grace) or never written, and a
	// context read before the reap names dots that no copy keeps: there
	// is nothing left for it to replace.
	Absent bool
}

func (e *ContextAheadError) Error() string {
	return fmt.Sprintf("context names counter %d for actor %q, the copy holds %d", e.Counter, e.Actor, e.Held)
}

// Is makes errors.Is(err, cairn.ErrInvalidArgument) hold.
func (e *ContextAheadError) Is(target error) bool { return target == cairn.ErrInvalidArgument }

var (
	// ErrNotDelivered marks an error after which the request cannot have
	// reached the node.
	ErrNotDelivered = errors.New("not delivered")
	// ErrSilent is why a target that did not answer within the failover
	// delay was replaced.
	ErrSilent = errors.New("no answer within the failover delay")
)

// Config shapes a Coordinator.
type Config struct {
	// Self is this node's name.
	Self string
	// SyncWrites asks every replica to fsync a write before acknowledging
	// it; without it only requests with DW > 0 do.
	SyncWrites bool
	// FailoverFraction is the part of a request's time (its deadline
	// minus its start) a target may stay silent before the next healthy
	// fallback is asked too. Default 1/4: a 2 s request asks a fallback
	// after 500 ms, leaving it three times as long to answer.
	FailoverFraction float64
	// MinFailover is the least silence that leads to a failover, however
	// short the request's deadline. Default 20 ms.
	MinFailover time.Duration
	// ReadAll makes a get ask every target of the key, not only as many
	// as R (and PR) need: read repair then checks every replica on every
	// get, at the price of two more messages and a replica read each.
	// Default false; anti-entropy repairs what a get does not look at.
	ReadAll bool
	// ReadRepair sends the merge of a get's answers to every target whose
	// copy was missing or behind it. Default true.
	ReadRepair bool
	// RepairTimeout bounds read repair, which starts once a get's every
	// target answered or its deadline passed. Default 2 s.
	RepairTimeout time.Duration
}

// DefaultConfig returns the defaults each field documents.
func DefaultConfig(self string) Config {
	return Config{Self: self, SyncWrites: true, ReadRepair: true, FailoverFraction: 0.25,
		MinFailover: 20 * time.Millisecond, RepairTimeout: 2 * time.Second}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Self == "" {
		errs = append(errs, errors.New("coord: Self is empty"))
	}
	if c.FailoverFraction <= 0 || c.FailoverFraction > 1 {
		errs = append(errs, fmt.Errorf("coord: FailoverFraction %v must be in (0, 1]", c.FailoverFraction))
	}
	if c.MinFailover <= 0 {
		errs = append(errs, fmt.Errorf("coord: MinFailover %v must be positive", c.MinFailover))
	}
	if c.RepairTimeout <= 0 {
		errs = append(errs, fmt.Errorf("coord: RepairTimeout %v must be positive", c.RepairTimeout))
	}
	return errors.Join(errs...)
}

// Coordinator runs requests. It owns the goroutines of their replica calls,
// which outlive the answer to the client, and Close stops them.
type Coordinator struct {
	cfg      Config
	replicas Replicas
	view     View
	obs      Observer

	// lifetime bounds every replica call besides the call's own deadline:
	// calls keep going after a client has its answer, but not after Close.
	lifetime context.Context
	stop     context.CancelFunc
	// calls make the replica calls that block (this node's own, and
	// those the replica set cannot make by callback), and background
	// runs read repairs and the writes to pending replicas: both on
	// long-lived goroutines, whose stacks have grown through the store
	// and the transport once and for all.
	calls      *workers.Pool[replicaCall]
	background *workers.Pool[func()]
	// gate keeps Close from closing the pools while an answer handled on
	// a goroutine that is not the coordinator's (a replica batch's, a
	// timer's) starts calls or a repair in them.
	gate   sync.RWMutex
	closed bool

	// drive runs a flight: run, or in tests a harness that feeds it
	// scripted events one at a time.
	drive func(ctx context.Context, f *flight, targets []quorum.Target, decided func()) error
}

// New returns a Coordinator; the caller must Close it.
func New(cfg Config, r Replicas, v View, o Observer) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o == nil {
		o = nopObserver{}
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Coordinator{cfg: cfg, replicas: r, view: v, obs: o, lifetime: ctx, stop: stop,
		calls: workers.New(workerIdle, makeCall), background: workers.New(workerIdle, func(fn func()) { fn() })}
	c.drive = c.run
	return c, nil
}

// Close cuts off the replica calls still running (they fail with a
// cancellation) and waits for every goroutine the coordinator started.
// Requests must not be started after Close.
func (c *Coordinator) Close() {
	c.stop()
	c.gate.Lock()
	c.closed = true
	c.gate.Unlock()
	c.background.Close()
	c.calls.Close()
}

// admit lets an event of a request (run) start calls or a repair, until
// Close; release must follow when it says yes.
func (c *Coordinator) admit() bool {
	c.gate.RLock()
	if c.closed {
		c.gate.RUnlock()
		return false
	}
	return true
}

func (c *Coordinator) release() { c.gate.RUnlock() }

// workerIdle is how long a coordinator's worker stays parked before it
// exits.
const workerIdle = 10 * time.Second

type nopObserver struct{}

func (nopObserver) Forwarded()                                            {}
func (nopObserver) Failover(string, quorum.Target, quorum.Target, string) {}
func (nopObserver) ReadRepaired(quorum.Target, error)                     {}
func (nopObserver) ContextAhead([]string, string)                         {}
func (nopObserver) Pending(string, string, error)                         {}

// Reason is the short text a quorum error shows for a replica's failure.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrSilent):
		return "silent"
	case errors.Is(err, cairn.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrNotDelivered):
		return "unreachable"
	}
	return err.Error()
}
