package antientropy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cairnkv/cairn"
)

// QueryKind names what an exchange asks its peer for.
type QueryKind uint8

const (
	// QueryRoot asks for the peer's shape and root.
	QueryRoot QueryKind = iota + 1
	// QueryBranches asks for every branch hash.
	QueryBranches
	// QuerySegments asks for the segment hashes under Query.Branches.
	QuerySegments
	// QueryKeys asks for the key lists of Query.Segments, read from the
	// peer's storage.
	QueryKeys
)

func (k QueryKind) String() string {
	switch k {
	case QueryRoot:
		return "root"
	case QueryBranches:
		return "branches"
	case QuerySegments:
		return "segments"
	case QueryKeys:
		return "keys"
	}
	return fmt.Sprintf("QueryKind(%d)", uint8(k))
}

// Query is what an exchange asks of the peer in one round. It is a plain
// struct so node can carry it in a wire message as it is.
type Query struct {
	Kind QueryKind `msgpack:"q"`
	// Branches are the branches whose segment hashes a QuerySegments asks
	// for, strictly ascending.
	Branches []int `msgpack:"b,omitempty"`
	// Segments are the segments whose key lists a QueryKeys asks for,
	// strictly ascending.
	Segments []int `msgpack:"s,omitempty"`
}

// Validate checks a query received from a peer against the local shape.
// Errors wrap cairn.ErrProtocol: a peer that sends one is broken.
func (q Query) Validate(shape Shape) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: antientropy %v query: %s", cairn.ErrProtocol, q.Kind, fmt.Sprintf(format, args...))
	}
	switch q.Kind {
	case QueryRoot, QueryBranches:
		if len(q.Branches) != 0 || len(q.Segments) != 0 {
			return bad("carries branches or segments")
		}
	case QuerySegments:
		if len(q.Segments) != 0 {
			return bad("carries segments")
		}
		if err := checkIndices(q.Branches, shape.Branches); err != nil {
			return bad("branches: %v", err)
		}
	case QueryKeys:
		if len(q.Branches) != 0 {
			return bad("carries branches")
		}
		if err := checkIndices(q.Segments, shape.Segments); err != nil {
			return bad("segments: %v", err)
		}
	default:
		return bad("unknown kind")
	}
	return nil
}

// checkIndices accepts a non-empty, strictly ascending list in [0, n).
func checkIndices(idx []int, n int) error {
	if len(idx) == 0 {
		return errors.New("none")
	}
	for i, v := range idx {
		if v < 0 || v >= n {
			return fmt.Errorf("%d out of range [0, %d)", v, n)
		}
		if i > 0 && v <= idx[i-1] {
			return fmt.Errorf("not strictly ascending at %d", i)
		}
	}
	return nil
}

// Answer is the peer's reply to a Query.
type Answer struct {
	// Shape and Root answer QueryRoot.
	Shape Shape  `msgpack:"sh"`
	Root  uint64 `msgpack:"r"`
	// Hashes answers QueryBranches (every branch, in order) and
	// QuerySegments (for each branch asked, in the order asked, its
	// Shape.PerBranch segment hashes).
	Hashes []uint64 `msgpack:"h,omitempty"`
	// Keys answers QueryKeys: every key the peer holds in the segments
	// asked, with its Version, in one canonical order across all of them
	// (see CompareKeys): the order of a partition scan filtered by
	// segment, not segment by segment.
	Keys []KeyVersion `msgpack:"k,omitempty"`
}

// Answer answers the queries a tree can answer alone (QueryRoot,
// QueryBranches, QuerySegments) after validating q. Key lists come from
// storage: for QueryKeys the node scans the partition for the keys whose
// segment is in NewSegmentSet(shape, q.Segments), with their Versions, in
// canonical order.
func (t *Tree) Answer(q Query) (Answer, error) {
	if err := q.Validate(t.shape); err != nil {
		return Answer{}, err
	}
	switch q.Kind {
	case QueryRoot:
		return Answer{Shape: t.shape, Root: t.Root()}, nil
	case QueryBranches:
		return Answer{Hashes: t.Branches()}, nil
	case QuerySegments:
		hashes := make([]uint64, 0, len(q.Branches)*t.shape.PerBranch())
		for _, b := range q.Branches {
			hashes = append(hashes, t.Segments(b)...)
		}
		return Answer{Hashes: hashes}, nil
	}
	return Answer{}, cairn.InvalidArgument("antientropy: a %v query is answered from storage, not from the tree", q.Kind)
}

// ExchangeConfig bounds one exchange.
type ExchangeConfig struct {
	// SegmentsPerRound is the most segments whose key lists one QueryKeys
	// round asks for (and the caller reads locally). It bounds the memory
	// and the size of an answer. Default 64.
	SegmentsPerRound int
	// MaxKeys ends an exchange after the round in which it has found this
	// many differing keys; the next exchange finds the rest. It bounds the
	// repair work one exchange hands out. Default 10,000.
	MaxKeys int
}

// DefaultExchangeConfig returns the defaults.
func DefaultExchangeConfig() ExchangeConfig {
	return ExchangeConfig{SegmentsPerRound: 64, MaxKeys: 10_000}
}

// Validate reports every problem, wrapping cairn.ErrInvalidArgument.
func (c ExchangeConfig) Validate() error {
	var errs []error
	if c.SegmentsPerRound < 1 {
		errs = append(errs, fmt.Errorf("segments per round %d: want at least 1", c.SegmentsPerRound))
	}
	if c.MaxKeys < 1 {
		errs = append(errs, fmt.Errorf("max keys %d: want at least 1", c.MaxKeys))
	}
	if len(errs) > 0 {
		return cairn.InvalidArgument("antientropy exchange config: %v", joinProblems(errs))
	}
	return nil
}

// Repair lists the keys one round found different. The caller syncs them
// with DVV Sync, so neither side loses a sibling:
//
//   - MissingHere (the peer's entries): fetch from the peer, store here.
//   - MissingThere (this replica's entries): send to the peer.
//   - Differ (the peer's entries): fetch from the peer, sync into the local
//     object, send the result back.
type Repair struct {
	MissingHere  []KeyVersion
	MissingThere []KeyVersion
	Differ       []KeyVersion
}

// Len is the number of keys to repair.
func (r Repair) Len() int { return len(r.MissingHere) + len(r.MissingThere) + len(r.Differ) }

// Step is what an exchange wants done next.
type Step struct {
	// Query is what to ask the peer next, unless Done. A QueryKeys also
	// needs this replica's key lists of the same segments, fed with the
	// answer.
	Query Query
	// Repair holds the keys the answer just fed showed to differ. They can
	// be synced while the next query is in flight.
	Repair Repair
	// Done means there is nothing more to ask.
	Done bool
}

// ExchangeStats are an exchange's counters.
type ExchangeStats struct {
	// Rounds is the number of answers fed.
	Rounds int
	// BranchesDiffering and SegmentsDiffering count the hashes that
	// differed at each level.
	BranchesDiffering, SegmentsDiffering int
	// SegmentsCompared counts the segments whose key lists were compared.
	SegmentsCompared int
	// KeysMissingHere, KeysMissingThere and KeysDiffering count the keys
	// handed out for repair, by direction.
	KeysMissingHere, KeysMissingThere, KeysDiffering int
	// Truncated means MaxKeys ended the exchange with segments left
	// uncompared.
	Truncated bool
}

type exchangeState uint8

const (
	waitRoot exchangeState = iota
	waitBranches
	waitSegments
	waitKeys
	exchangeDone
	exchangeFailed
)

// Exchange compares one partition's tree with a peer's replica, as the
// initiating side, in the style of etcd's raft: it does no I/O. The caller
// sends Pending to the peer, feeds the answer (and, for QueryKeys, its own
// key lists of the same segments) to Feed, syncs the Repair it gets back,
// and repeats until Done:
//
//	x, _ := NewExchange(tree, cfg)
//	q := x.Pending()
//	for {
//		ans := ask(peer, q)                  // the network
//		var local []KeyVersion
//		if q.Kind == QueryKeys {
//			local = scan(partition, q.Segments) // storage
//		}
//		step, err := x.Feed(ans, local)
//		if err != nil { ... }
//		repair(step.Repair)
//		if step.Done { break }
//		q = step.Query
//	}
//
// Errors are final: an answer that does not fit its query (wrong length,
// unsorted keys, keys from segments not asked for) wraps cairn.ErrProtocol;
// bad local key lists are the caller's bug and wrap
// cairn.ErrInvalidArgument. An Exchange is not safe for concurrent use.
type Exchange struct {
	local *Tree
	cfg   ExchangeConfig
	state exchangeState
	q     Query
	// todo are the differing segments whose key lists are still to be
	// compared, ascending.
	todo  []int
	stats ExchangeStats
	err   error
}

// NewExchange starts an exchange of the local tree; its first query asks for
// the peer's root.
func NewExchange(local *Tree, cfg ExchangeConfig) (*Exchange, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Exchange{local: local, cfg: cfg, q: Query{Kind: QueryRoot}}, nil
}

// Pending is the query waiting for its answer (the zero Query once done).
func (x *Exchange) Pending() Query { return x.q }

// Done reports whether the exchange has ended, successfully or not.
func (x *Exchange) Done() bool { return x.state >= exchangeDone }

// Err is the error that ended the exchange, if any.
func (x *Exchange) Err() error { return x.err }

// Stats are the exchange's counters so far.
func (x *Exchange) Stats() ExchangeStats { return x.stats }

// Feed gives the exchange the peer's answer to Pending and, for a
// QueryKeys, the local key lists of the same segments (canonically sorted).
func (x *Exchange) Feed(ans Answer, local []KeyVersion) (Step, error) {
	switch x.state {
	case exchangeDone:
		return Step{}, cairn.InvalidArgument("antientropy: exchange already done")
	case exchangeFailed:
		return Step{}, x.err
	}
	x.stats.Rounds++
	step, err := x.feed(ans, local)
	if err != nil {
		x.state, x.q, x.err = exchangeFailed, Query{}, err
		return Step{}, err
	}
	if step.Done {
		x.state, x.q = exchangeDone, Query{}
	} else {
		x.q = step.Query
	}
	return step, nil
}

func (x *Exchange) feed(ans Answer, local []KeyVersion) (Step, error) {
	shape := x.local.shape
	switch x.state {
	case waitRoot:
		if ans.Shape != shape {
			return Step{}, x.peerError("the peer's tree has %v, this one %v", ans.Shape, shape)
		}
		if ans.Root == x.local.Root() {
			return Step{Done: true}, nil
		}
		x.state = waitBranches
		return Step{Query: Query{Kind: QueryBranches}}, nil

	case waitBranches:
		if len(ans.Hashes) != shape.Branches {
			return Step{}, x.peerError("%d branch hashes, want %d", len(ans.Hashes), shape.Branches)
		}
		diff := DiffBranches(x.local.Branches(), ans.Hashes)
		x.stats.BranchesDiffering = len(diff)
		if len(diff) == 0 {
			// The roots differed because a write landed between the
			// two reads; there is nothing to do.
			return Step{Done: true}, nil
		}
		x.state = waitSegments
		return Step{Query: Query{Kind: QuerySegments, Branches: diff}}, nil

	case waitSegments:
		per := shape.PerBranch()
		if want := len(x.q.Branches) * per; len(ans.Hashes) != want {
			return Step{}, x.peerError("%d segment hashes for %d branches, want %d", len(ans.Hashes), len(x.q.Branches), want)
		}
		for i, b := range x.q.Branches {
			for _, s := range DiffBranches(x.local.Segments(b), ans.Hashes[i*per:(i+1)*per]) {
				x.todo = append(x.todo, b*per+s)
			}
		}
		x.stats.SegmentsDiffering = len(x.todo)
		if len(x.todo) == 0 {
			return Step{Done: true}, nil
		}
		x.state = waitKeys
		return Step{Query: x.nextKeys()}, nil

	case waitKeys:
		asked, err := NewSegmentSet(shape, x.q.Segments)
		if err != nil {
			return Step{}, err
		}
		if err := checkKeys(ans.Keys, asked); err != nil {
			return Step{}, x.peerError("%v", err)
		}
		if err := checkKeys(local, asked); err != nil {
			return Step{}, cairn.InvalidArgument("antientropy: local %v", err)
		}
		var r Repair
		r.MissingHere, r.MissingThere, r.Differ = DiffKeys(local, ans.Keys)
		x.stats.SegmentsCompared += len(x.q.Segments)
		x.stats.KeysMissingHere += len(r.MissingHere)
		x.stats.KeysMissingThere += len(r.MissingThere)
		x.stats.KeysDiffering += len(r.Differ)
		if len(x.todo) == 0 {
			return Step{Repair: r, Done: true}, nil
		}
		if x.stats.KeysMissingHere+x.stats.KeysMissingThere+x.stats.KeysDiffering >= x.cfg.MaxKeys {
			x.stats.Truncated = true
			return Step{Repair: r, Done: true}, nil
		}
		return Step{Query: x.nextKeys(), Repair: r}, nil
	}
	return Step{}, fmt.Errorf("antientropy: exchange in state %d", x.state)
}

// nextKeys takes the next round's segments off the to-do list.
func (x *Exchange) nextKeys() Query {
	n := min(len(x.todo), x.cfg.SegmentsPerRound)
	q := Query{Kind: QueryKeys, Segments: slices.Clone(x.todo[:n])}
	x.todo = x.todo[n:]
	return q
}

func (x *Exchange) peerError(format string, args ...any) error {
	return fmt.Errorf("%w: antientropy %v answer: %s", cairn.ErrProtocol, x.q.Kind, fmt.Sprintf(format, args...))
}
