package buckets

import (
	"bytes"
	"fmt"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// MetaPrefix is the cluster metadata prefix of bucket properties.
const MetaPrefix = "bucket"

// Limits on a record: a bucket name is a key's bucket (wire.MaxBucketLen),
// and a replication factor beyond the ring's member limit means nothing.
const (
	maxN         = 64
	maxRecordLen = 1024
	// MaxSiblingLimit bounds sibling_limit, a bucket's as a node's own
	// (node.MaxSiblingLimit): see there why.
	MaxSiblingLimit = 2000
)

// Conflict modes and datatypes.
const (
	ConflictSiblings = "siblings"
	ConflictLWW      = "lww"
	DatatypeCounter  = "counter"
	DatatypeSet      = "set"
	GraceKeep        = "keep"
)

// Props are a bucket's properties. Zero values mean "the cluster's
// default": N 0, quorums wire.QuorumDefault, NotFoundOK nil, SiblingLimit
// 0, Conflict "" (siblings), Datatype "" (none), DeleteGrace "" (keep).
type Props struct {
	N            int         `msgpack:"n" json:"n,omitempty"`
	R            wire.Quorum `msgpack:"r" json:"-"`
	W            wire.Quorum `msgpack:"w" json:"-"`
	PR           wire.Quorum `msgpack:"pr" json:"-"`
	PW           wire.Quorum `msgpack:"pw" json:"-"`
	DW           wire.Quorum `msgpack:"dw" json:"-"`
	NotFoundOK   *bool       `msgpack:"notfound_ok" json:"notfound_ok,omitempty"`
	Conflict     string      `msgpack:"conflict" json:"conflict,omitempty"`
	Datatype     string      `msgpack:"datatype" json:"datatype,omitempty"`
	SiblingLimit int         `msgpack:"sibling_limit" json:"sibling_limit,omitempty"`
	DeleteGrace  string      `msgpack:"delete_grace" json:"delete_grace,omitempty"`
}

// Defaults are properties that name every field as the cluster's default.
func Defaults() Props {
	q := wire.QuorumDefault
	return Props{R: q, W: q, PR: q, PW: q, DW: q}
}

// Change is what `cairn bucket create|set` asks for: the fields set are
// the ones to change.
type Change struct {
	N                  *int
	R, W, PR, PW, DW   *wire.Quorum
	NotFoundOK         *bool
	Conflict, Datatype *string
	SiblingLimit       *int
	DeleteGrace        *string
}

// Apply returns p changed by c, refusing what may not change: n and the
// datatype are fixed once the bucket exists (create is true only for the
// record that creates it), and a property this version cannot honour.
func Apply(p Props, c Change, create bool) (Props, error) {
	if c.N != nil {
		if !create && *c.N != p.N {
			return p, cairn.InvalidArgument("n is fixed when a bucket is created (it has n=%s); create another bucket", nOrDefault(p.N))
		}
		p.N = *c.N
	}
	if c.Datatype != nil {
		if !create && *c.Datatype != p.Datatype {
			return p, cairn.InvalidArgument("the datatype is fixed when a bucket is created (it has %q)", p.Datatype)
		}
		p.Datatype = *c.Datatype
	}
	for _, f := range []struct {
		dst *wire.Quorum
		src *wire.Quorum
	}{{&p.R, c.R}, {&p.W, c.W}, {&p.PR, c.PR}, {&p.PW, c.PW}, {&p.DW, c.DW}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if c.NotFoundOK != nil {
		v := *c.NotFoundOK
		p.NotFoundOK = &v
	}
	if c.Conflict != nil {
		p.Conflict = *c.Conflict
	}
	if c.SiblingLimit != nil {
		p.SiblingLimit = *c.SiblingLimit
	}
	if c.DeleteGrace != nil {
		p.DeleteGrace = *c.DeleteGrace
	}
	return p, p.Validate()
}

// Mode is how the bucket's objects resolve concurrent writes.
//
// The conflict mode may change at any time (Apply allows it): objects
// written under the other mode are resolved by the new one wherever they
// next meet a write, a read or a merge, not rewritten at the change. An
// object whose siblings were kept side by side keeps its latest sibling
// from then on; one written last-write-wins simply starts taking siblings.
func (p Props) Mode() dvv.Mode {
	switch p.Datatype {
	case DatatypeCounter:
		return dvv.CounterMode
	case DatatypeSet:
		return dvv.SetMode
	}
	if p.Conflict == ConflictLWW {
		return dvv.LWW
	}
	return dvv.Siblings
}

func nOrDefault(n int) string {
	if n == 0 {
		return "the cluster's"
	}
	return fmt.Sprint(n)
}

// Validate checks p. A delete grace other than keep is refused: this version does not implement them, and a bucket that
// claimed them would silently behave otherwise.
func (p Props) Validate() error {
	if p.N < 0 || p.N > maxN {
		return cairn.InvalidArgument("n %d: want 1 to %d (or unset for the cluster's)", p.N, maxN)
	}
	for _, f := range []struct {
		name string
		q    wire.Quorum
	}{{"r", p.R}, {"w", p.W}, {"pr", p.PR}, {"pw", p.PW}, {"dw", p.DW}} {
		if f.q < wire.QuorumAll {
			return cairn.InvalidArgument("%s %d: not a quorum", f.name, f.q)
		}
		if p.N > 0 && f.q > wire.Quorum(p.N) {
			return cairn.InvalidArgument("%s %d: more than the bucket's n=%d", f.name, f.q, p.N)
		}
	}
	switch p.Conflict {
	case "", ConflictSiblings, ConflictLWW:
	default:
		return cairn.InvalidArgument("conflict %q: want siblings or lww", p.Conflict)
	}
	switch p.Datatype {
	case "":
	case DatatypeCounter, DatatypeSet:
		if p.Conflict == ConflictLWW {
			// A datatype merges by its join; last-write-wins would drop
			// concurrent operations, which is what the datatype exists to
			// keep.
			return cairn.InvalidArgument("datatype %s: conflict lww does not apply; a %s merges every operation", p.Datatype, p.Datatype)
		}
	default:
		return cairn.InvalidArgument("datatype %q: want counter or set, or none", p.Datatype)
	}
	if p.SiblingLimit < 0 || p.SiblingLimit > MaxSiblingLimit {
		return cairn.InvalidArgument("sibling_limit %d: want 1 to %d (or unset for the node's)", p.SiblingLimit, MaxSiblingLimit)
	}
	switch p.DeleteGrace {
	case "", GraceKeep:
	default:
		d, err := time.ParseDuration(p.DeleteGrace)
		if err != nil {
			return cairn.InvalidArgument("delete_grace %q: want a duration or keep", p.DeleteGrace)
		}
		if d < MinDeleteGrace {
			return cairn.InvalidArgument("delete_grace %s: at least %s (or keep)", p.DeleteGrace, MinDeleteGrace)
		}
	}
	return nil
}

// MinDeleteGrace is the shortest delete grace a bucket takes. A grace
// must outlast every write in flight when the delete was made (docs:
// keep it well above the longest request deadline); this floor only
// refuses the meaningless ones.
const MinDeleteGrace = time.Second

// Grace returns the bucket's delete grace; ok is false when its
// tombstones are kept for good.
func (p Props) Grace() (d time.Duration, ok bool) {
	if p.DeleteGrace == "" || p.DeleteGrace == GraceKeep {
		return 0, false
	}
	d, err := time.ParseDuration(p.DeleteGrace)
	return d, err == nil && d >= MinDeleteGrace
}

// Encode is p's metadata record.
func Encode(p Props) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(&p); err != nil {
		// Ints, strings and a bool always encode; failing is a bug.
		panic(fmt.Sprintf("buckets: encode: %v", err))
	}
	return buf.Bytes()
}

// Decode reads and validates a metadata record.
func Decode(b []byte) (Props, error) {
	if len(b) > maxRecordLen {
		return Props{}, fmt.Errorf("bucket record of %d bytes, more than %d", len(b), maxRecordLen)
	}
	p := Defaults()
	if err := mpcheck.Unmarshal(b, &p); err != nil {
		return Props{}, fmt.Errorf("bucket record: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Props{}, fmt.Errorf("bucket record: %w", err)
	}
	return p, nil
}
