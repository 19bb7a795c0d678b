package antientropy

import (
	"encoding/binary"
	"maps"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines; the check keeps it that way, and covers
// the tests that start their own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fataler is what the helpers need of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// replica is a dumb model of one node's copy of a partition: a map from
// key to version kept beside the tree it should match, answering an
// exchange's queries as node will (tree queries from the tree, key queries
// by filtering a scan of everything).
type replica struct {
	tree *Tree
	// objs maps the canonical encoding uvarint(len(bucket)) bucket key,
	// whose byte order is the canonical key order, to the entry.
	objs map[string]KeyVersion
}

func newReplica(tb fataler, shape Shape) *replica {
	tb.Helper()
	tree, err := NewTree(shape)
	if err != nil {
		tb.Fatal(err)
	}
	return &replica{tree: tree, objs: map[string]KeyVersion{}}
}

func encodeKey(bucket string, key []byte) string {
	b := binary.AppendUvarint(nil, uint64(len(bucket)))
	b = append(b, bucket...)
	return string(append(b, key...))
}

// put stores version under the key, Absent removing it, and updates the
// tree the way node's write path will.
func (r *replica) put(bucket string, key []byte, version uint64) {
	k := encodeKey(bucket, key)
	old := r.objs[k].Version
	if version == Absent {
		delete(r.objs, k)
	} else {
		r.objs[k] = KeyVersion{Bucket: bucket, Key: slices.Clone(key), Version: version}
	}
	r.tree.Update(bucket, key, old, version)
}

func (r *replica) version(bucket string, key []byte) uint64 {
	return r.objs[encodeKey(bucket, key)].Version
}

// all is every stored entry in canonical order.
func (r *replica) all() []KeyVersion {
	out := make([]KeyVersion, 0, len(r.objs))
	for _, k := range slices.Sorted(maps.Keys(r.objs)) {
		out = append(out, r.objs[k])
	}
	return out
}

// keys is the key list of some segments, as a filtered partition scan.
func (r *replica) keys(tb fataler, segments []int) []KeyVersion {
	tb.Helper()
	set, err := NewSegmentSet(r.tree.Shape(), segments)
	if err != nil {
		tb.Fatal(err)
	}
	var out []KeyVersion
	for _, kv := range r.all() {
		if set.Has(kv.Bucket, kv.Key) {
			out = append(out, kv)
		}
	}
	return out
}

// answer is the peer's side of an exchange.
func (r *replica) answer(tb fataler, q Query) Answer {
	tb.Helper()
	if q.Kind == QueryKeys {
		if err := q.Validate(r.tree.Shape()); err != nil {
			tb.Fatal(err)
		}
		return Answer{Keys: r.keys(tb, q.Segments)}
	}
	ans, err := r.tree.Answer(q)
	if err != nil {
		tb.Fatal(err)
	}
	return ans
}

// round is one query of an exchange and what came of it.
type round struct {
	query  Query
	answer Answer
	local  []KeyVersion
	step   Step
	err    error
}

// exchange runs a full exchange of a against b, the way node will, and
// returns every round. It stops at the first error.
func exchange(tb fataler, a, b *replica, cfg ExchangeConfig) ([]round, *Exchange) {
	tb.Helper()
	x, err := NewExchange(a.tree, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var rounds []round
	q := x.Pending()
	for {
		rd := round{query: q, answer: b.answer(tb, q)}
		if q.Kind == QueryKeys {
			rd.local = a.keys(tb, q.Segments)
		}
		rd.step, rd.err = x.Feed(rd.answer, rd.local)
		rounds = append(rounds, rd)
		if rd.err != nil || rd.step.Done {
			return rounds, x
		}
		q = rd.step.Query
	}
}

// repairs gathers every round's repair.
func repairs(rounds []round) Repair {
	var all Repair
	for _, rd := range rounds {
		all.MissingHere = append(all.MissingHere, rd.step.Repair.MissingHere...)
		all.MissingThere = append(all.MissingThere, rd.step.Repair.MissingThere...)
		all.Differ = append(all.Differ, rd.step.Repair.Differ...)
	}
	return all
}
