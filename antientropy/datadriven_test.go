package antientropy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/datadriven"
)

// TestTreeAndExchange runs the scripts in testdata/tree and
// testdata/exchange. Commands, one a line:
//
//	tree a [segments=16] [branches=4]   a replica's empty tree
//	put a BUCKET KEY LABEL              store KEY at the version named LABEL
//	del a BUCKET KEY                    remove KEY from the store
//	show a                              root, keys, and every non-empty segment
//	diff a b                            the segments whose hashes differ
//	rebuild a                           a Builder's tree from a's store, vs a's tree
//	save a                              MarshalBinary then UnmarshalBinary
//	exchange a b [per-round=N] [max-keys=N]  a exchange, a initiating
//	sync a b [per-round=N] [max-keys=N]      an exchange, then its repairs applied
//
// A version is the hash of its label; a differing key synced by sync gets
// the label of the merge, its two labels' parts joined by "+". Beyond the
// recorded output, diff fails if the trees disagree with the stores, and
// rebuild and save fail unless the result equals the tree.
func TestTreeAndExchange(t *testing.T) {
	for _, path := range []string{"testdata/tree", "testdata/exchange"} {
		h := &script{replicas: map[string]*replica{}, labels: map[uint64]string{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	}
}

type script struct {
	replicas map[string]*replica
	labels   map[uint64]string
}

func (h *script) version(label string) uint64 {
	v := xxhash.Sum64String(label)
	h.labels[v] = label
	return v
}

func (h *script) kv(kv KeyVersion) string {
	return fmt.Sprintf("%s/%s@%s", kv.Bucket, kv.Key, h.labels[kv.Version])
}

func (h *script) kvs(kvs []KeyVersion) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = h.kv(kv)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (h *script) replica(t *testing.T, d *datadriven.TestData, i int) *replica {
	if len(d.CmdArgs) <= i {
		d.Fatalf(t, "missing replica name")
	}
	r := h.replicas[d.CmdArgs[i].Key]
	if r == nil {
		d.Fatalf(t, "no tree %q", d.CmdArgs[i].Key)
	}
	return r
}

func (h *script) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "tree":
		shape := Shape{Segments: 16, Branches: 4}
		d.MaybeScanArgs(t, "segments", &shape.Segments)
		d.MaybeScanArgs(t, "branches", &shape.Branches)
		tree, err := NewTree(shape)
		if err != nil {
			return err.Error()
		}
		h.replicas[d.CmdArgs[0].Key] = &replica{tree: tree, objs: map[string]KeyVersion{}}
		return "ok"

	case "put", "del":
		r := h.replica(t, d, 0)
		bucket, key := d.CmdArgs[1].Key, []byte(d.CmdArgs[2].Key)
		version := Absent
		if d.Cmd == "put" {
			version = h.version(d.CmdArgs[3].Key)
		}
		r.put(bucket, key, version)
		return fmt.Sprintf("segment %d", r.tree.SegmentOf(bucket, key))

	case "show":
		return h.show(h.replica(t, d, 0))

	case "diff":
		a, b := h.replica(t, d, 0), h.replica(t, d, 1)
		diff, err := a.tree.Diff(b.tree)
		if err != nil {
			return err.Error()
		}
		if want := modelDiff(a, b); !slices.Equal(diff, want) {
			t.Fatalf("%s: tree diff %v, stores differ in %v", d.Pos, diff, want)
		}
		return fmt.Sprintf("segments %v", diff)

	case "rebuild":
		r := h.replica(t, d, 0)
		b, err := NewBuilder(r.tree.Shape())
		if err != nil {
			t.Fatal(err)
		}
		all := r.all()
		for _, kv := range slices.Backward(all) {
			b.Add(kv.Bucket, kv.Key, kv.Version)
		}
		if !b.Tree().Equal(r.tree) || b.Keys() != r.tree.Keys() {
			t.Fatalf("%s: rebuilt tree differs from the incremental one", d.Pos)
		}
		return fmt.Sprintf("rebuilt %d keys: equal", b.Keys())

	case "save":
		r := h.replica(t, d, 0)
		raw, err := r.tree.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Tree
		if err := back.UnmarshalBinary(raw); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(r.tree) || back.Keys() != r.tree.Keys() {
			t.Fatalf("%s: loaded tree differs from the saved one", d.Pos)
		}
		return fmt.Sprintf("%d bytes: loaded equal", len(raw))

	case "exchange", "sync":
		a, b := h.replica(t, d, 0), h.replica(t, d, 1)
		cfg := DefaultExchangeConfig()
		d.MaybeScanArgs(t, "per-round", &cfg.SegmentsPerRound)
		d.MaybeScanArgs(t, "max-keys", &cfg.MaxKeys)
		rounds, x := exchange(t, a, b, cfg)
		out := h.trace(rounds, x)
		if d.Cmd == "sync" && x.Err() == nil {
			h.apply(a, b, repairs(rounds))
			out += "applied; " + h.compare(a, b)
		}
		return out
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return ""
}

func (h *script) show(r *replica) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "root %016x, %d keys\n", r.tree.Root(), r.tree.Keys())
	bySeg := map[int][]KeyVersion{}
	for _, kv := range r.all() {
		s := r.tree.SegmentOf(kv.Bucket, kv.Key)
		bySeg[s] = append(bySeg[s], kv)
	}
	for s := range r.tree.Shape().Segments {
		if r.tree.Segment(s) == 0 && len(bySeg[s]) == 0 {
			continue
		}
		fmt.Fprintf(&sb, "branch %d segment %d: %016x %s\n", r.tree.Shape().BranchOf(s), s, r.tree.Segment(s), h.kvs(bySeg[s]))
	}
	return sb.String()
}

// modelDiff is the segments whose key/version sets differ between two
// replicas' stores.
func modelDiff(a, b *replica) []int {
	seg := func(r *replica) map[int]map[string]uint64 {
		m := map[int]map[string]uint64{}
		for k, kv := range r.objs {
			s := r.tree.SegmentOf(kv.Bucket, kv.Key)
			if m[s] == nil {
				m[s] = map[string]uint64{}
			}
			m[s][k] = kv.Version
		}
		return m
	}
	sa, sb := seg(a), seg(b)
	var out []int
	for s := range a.tree.Shape().Segments {
		if !mapsEqual(sa[s], sb[s]) {
			out = append(out, s)
		}
	}
	return out
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (h *script) trace(rounds []round, x *Exchange) string {
	var sb strings.Builder
	for _, rd := range rounds {
		switch rd.query.Kind {
		case QueryRoot:
			fmt.Fprintf(&sb, "root: ")
		case QueryBranches:
			fmt.Fprintf(&sb, "branches: ")
		case QuerySegments:
			fmt.Fprintf(&sb, "segments of branches %v: ", rd.query.Branches)
		case QueryKeys:
			fmt.Fprintf(&sb, "keys of segments %v (%d here, %d there): ", rd.query.Segments, len(rd.local), len(rd.answer.Keys))
		}
		switch next := rd.step.Query; {
		case rd.err != nil:
			fmt.Fprintf(&sb, "error: %v\n", rd.err)
			continue
		case rd.query.Kind == QueryRoot && rd.step.Done:
			sb.WriteString("equal")
		case rd.query.Kind == QueryRoot:
			sb.WriteString("differ")
		case rd.query.Kind == QueryBranches:
			fmt.Fprintf(&sb, "differ %v", next.Branches)
		case rd.query.Kind == QuerySegments:
			fmt.Fprintf(&sb, "%d differ", x.Stats().SegmentsDiffering)
		}
		if r := rd.step.Repair; r.Len() > 0 {
			fmt.Fprintf(&sb, "missing here %s, missing there %s, differ %s", h.kvs(r.MissingHere), h.kvs(r.MissingThere), h.kvs(r.Differ))
		} else if rd.query.Kind == QueryKeys {
			sb.WriteString("no keys differ")
		}
		if rd.step.Done {
			sb.WriteString("; done")
		}
		sb.WriteString("\n")
	}
	s := x.Stats()
	fmt.Fprintf(&sb, "stats: rounds=%d branches=%d segments=%d compared=%d missing-here=%d missing-there=%d differ=%d truncated=%t\n",
		s.Rounds, s.BranchesDiffering, s.SegmentsDiffering, s.SegmentsCompared, s.KeysMissingHere, s.KeysMissingThere, s.KeysDiffering, s.Truncated)
	return sb.String()
}

// apply syncs an exchange's repairs the way node will: missing keys are
// copied, differing keys merged on both sides.
func (h *script) apply(a, b *replica, r Repair) {
	for _, kv := range r.MissingHere {
		a.put(kv.Bucket, kv.Key, kv.Version)
	}
	for _, kv := range r.MissingThere {
		b.put(kv.Bucket, kv.Key, kv.Version)
	}
	for _, kv := range r.Differ {
		merged := h.version(mergeLabels(h.labels[a.version(kv.Bucket, kv.Key)], h.labels[kv.Version]))
		a.put(kv.Bucket, kv.Key, merged)
		b.put(kv.Bucket, kv.Key, merged)
	}
}

func mergeLabels(x, y string) string {
	parts := append(strings.Split(x, "+"), strings.Split(y, "+")...)
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), "+")
}

func (h *script) compare(a, b *replica) string {
	diff, err := a.tree.Diff(b.tree)
	if err != nil {
		return err.Error()
	}
	if len(diff) == 0 {
		return "trees equal\n"
	}
	return "segments still differ: " + strconv.Itoa(len(diff)) + "\n"
}
