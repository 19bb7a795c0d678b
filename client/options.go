package client

import (
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
)

// Quorum is a number of replicas, or one of the symbolic values One,
// Majority and All, resolved by the node against the key's replication
// factor.
type Quorum int32

// Symbolic quorums.
const (
	One      = Quorum(wire.QuorumOne)
	Majority = Quorum(wire.QuorumMajority)
	All      = Quorum(wire.QuorumAll)
)

// ParseQuorum reads "2", "one", "quorum" or "all".
func ParseQuorum(s string) (Quorum, error) {
	q, err := wire.ParseQuorum(s)
	return Quorum(q), err
}

// Option sets one per-call argument. Options a call does not use are
// ignored (W on a Get, R on a Put), so one option list can serve the read
// and the write of a read-modify-write.
type Option func(*callOptions) error

type callOptions struct {
	wire     wire.Options
	causal   []byte
	hasCtx   bool
	resolver Resolver
}

func (c *Client) buildOptions(opts []Option) (callOptions, error) {
	o := callOptions{wire: wire.DefaultOptions(), resolver: c.cfg.Resolver}
	for _, opt := range opts {
		if opt == nil {
			return callOptions{}, cairn.InvalidArgument("nil option")
		}
		if err := opt(&o); err != nil {
			return callOptions{}, err
		}
	}
	return o, nil
}

// validate refuses, before anything is sent, a request every node would
// refuse: a bad bucket or key, a value over the node's limit, a context no
// node can read, or a quorum above the cluster's replication factor. The
// node checks again; this only saves the round trip and names the field.
func (o *callOptions) validate(t *topology, op op, bucket string, key, value []byte) error {
	if err := wire.ValidateKey(bucket, key, t.maxKey); err != nil {
		return err
	}
	if op == opPut {
		if err := wire.ValidateValue(value, t.maxValue); err != nil {
			return err
		}
	}
	if op != opGet {
		if _, err := wire.DecodeContext(o.causal); err != nil {
			return err
		}
	}
	n := t.n
	if n <= 0 {
		n = anyNodeMaxN
	}
	fields := []struct {
		name string
		q    wire.Quorum
	}{{"r", o.wire.R}, {"pr", o.wire.PR}}
	if op != opGet {
		fields = []struct {
			name string
			q    wire.Quorum
		}{{"w", o.wire.W}, {"pw", o.wire.PW}, {"dw", o.wire.DW}}
	}
	for _, f := range fields {
		if f.q >= 0 && int(f.q) > n {
			return cairn.InvalidArgument("%s %d exceeds n %d", f.name, f.q, n)
		}
	}
	return nil
}

func quorumOption(name string, dst func(*wire.Options) *wire.Quorum, q Quorum, least int32) Option {
	return func(o *callOptions) error {
		if q >= 0 && int32(q) < least {
			return cairn.InvalidArgument("%s must be at least %d, got %d", name, least, q)
		}
		if q < 0 && q != One && q != Majority && q != All {
			return cairn.InvalidArgument("%s: %d is neither a count nor One, Majority or All", name, q)
		}
		*dst(&o.wire) = wire.Quorum(q)
		return nil
	}
}

// R is how many replicas must answer a Get.
func R(q Quorum) Option {
	return quorumOption("r", func(o *wire.Options) *wire.Quorum { return &o.R }, q, 1)
}

// W is how many replicas must acknowledge a Put or Delete.
func W(q Quorum) Option {
	return quorumOption("w", func(o *wire.Options) *wire.Quorum { return &o.W }, q, 1)
}

// PR is how many of the answers to a Get must come from primary replicas.
func PR(q Quorum) Option {
	return quorumOption("pr", func(o *wire.Options) *wire.Quorum { return &o.PR }, q, 0)
}

// PW is how many of the acknowledgements must come from primary replicas.
func PW(q Quorum) Option {
	return quorumOption("pw", func(o *wire.Options) *wire.Quorum { return &o.PW }, q, 0)
}

// DW is how many replicas must have made the write durable (fsync) before
// acknowledging.
func DW(q Quorum) Option {
	return quorumOption("dw", func(o *wire.Options) *wire.Quorum { return &o.DW }, q, 0)
}

// Timeout is the deadline the node applies to the request (and to every
// replica call it makes for it). The call's context still bounds the wait.
func Timeout(d time.Duration) Option {
	return func(o *callOptions) error {
		if d <= 0 || d > time.Hour {
			return cairn.InvalidArgument("timeout %v: must be positive and at most an hour", d)
		}
		o.wire.TimeoutMs = uint32(d.Milliseconds())
		if o.wire.TimeoutMs == 0 {
			o.wire.TimeoutMs = 1
		}
		return nil
	}
}

// NoSloppy makes the request count primary replicas only: no fallback node
// stands in for an unreachable primary.
func NoSloppy() Option {
	return func(o *callOptions) error {
		o.wire.NoSloppy = true
		return nil
	}
}

// NotFoundOK says whether a replica's "not found" counts toward R (true,
// the default, like Riak's notfound_ok). With false, a get waits for R
// replicas that hold the key, so a replica that lost its copy cannot make
// a found key read as missing; it answers not found only when every target
// answered and none holds it.
func NotFoundOK(ok bool) Option {
	return func(o *callOptions) error {
		o.wire.NotFoundStrict = !ok
		return nil
	}
}

// Causal passes the context of an earlier Get to a Put or Delete, so the
// write replaces the siblings that Get returned. The client checks that it
// is a context before sending it.
func Causal(c Context) Option {
	return func(o *callOptions) error {
		o.causal = c
		o.hasCtx = true
		return nil
	}
}

// WithResolver merges siblings for this call (Get, Update) instead of the
// Config's Resolver; nil turns resolving off for the call.
func WithResolver(r Resolver) Option {
	return func(o *callOptions) error {
		o.resolver = r
		return nil
	}
}
