package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Op is one kind of operation a worker issues.
type Op int

// The operations. Read is a Get. Update is a Put of an existing key that
// carries the causal context the harness last saw for it (a Put without one
// would add a sibling in cairn, not replace the value: see Config). Insert
// is a Put of a new key. RMW is a Get followed by a Put with the Get's
// context, timed as one operation (YCSB's read-modify-write).
const (
	Read Op = iota
	Update
	Insert
	RMW
	numOps
)

var opNames = [numOps]string{"read", "update", "insert", "rmw"}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return "op(" + strconv.Itoa(int(o)) + ")"
	}
	return opNames[o]
}

// Mix is the relative weight of each operation; weights need not add up to
// anything in particular, only their ratios matter.
type Mix [numOps]int

// ParseMix reads "read=50,update=50" (any of read, update, insert, rmw;
// missing ones weigh 0).
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("mix %q: %q is not op=weight", s, part)
		}
		name = strings.TrimSpace(name)
		op := -1
		for i, n := range opNames {
			if n == name {
				op = i
			}
		}
		if op < 0 {
			return Mix{}, fmt.Errorf("mix %q: unknown operation %q (want read, update, insert or rmw)", s, name)
		}
		if seen[name] {
			return Mix{}, fmt.Errorf("mix %q: %s given twice", s, name)
		}
		seen[name] = true
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 || w > 1_000_000 {
			return Mix{}, fmt.Errorf("mix %q: weight of %s must be an integer from 0 to 1000000", s, name)
		}
		m[op] = w
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("mix %q: at least one operation needs a positive weight", s)
	}
	return m, nil
}

func (m Mix) total() int {
	t := 0
	for _, w := range m {
		t += w
	}
	return t
}

// Ops lists the operations with a positive weight, in Op order.
func (m Mix) Ops() []Op {
	var ops []Op
	for op, w := range m {
		if w > 0 {
			ops = append(ops, Op(op))
		}
	}
	return ops
}

// String is the mix as ParseMix reads it, zero weights left out.
func (m Mix) String() string {
	var parts []string
	for _, op := range m.Ops() {
		parts = append(parts, fmt.Sprintf("%s=%d", op, m[op]))
	}
	return strings.Join(parts, ",")
}

// pick draws an operation with probability proportional to its weight.
func (m Mix) pick(r *rand.Rand) Op {
	n := r.IntN(m.total())
	for op, w := range m {
		if n < w {
			return Op(op)
		}
		n -= w
	}
	panic("unreachable: mix with no weight")
}

// Distribution chooses which existing key an operation addresses.
type Distribution string

// The request distributions.
const (
	Uniform Distribution = "uniform"
	// Zipfian is YCSB's scrambled zipfian over the loaded records.
	Zipfian Distribution = "zipfian"
	// Latest favours the most recently inserted keys.
	Latest Distribution = "latest"
)

// ParseDistribution reads uniform, zipfian or latest.
func ParseDistribution(s string) (Distribution, error) {
	switch d := Distribution(s); d {
	case Uniform, Zipfian, Latest:
		return d, nil
	}
	return "", fmt.Errorf("distribution %q: want uniform, zipfian or latest", s)
}

// Workload is a named YCSB core workload.
type Workload struct {
	Name         string
	Mix          Mix
	Distribution Distribution
}

// Workloads are YCSB's core workloads but E (scans, which cairn does not
// have), with YCSB's proportions and request distributions.
var Workloads = map[string]Workload{
	"a": {Name: "a", Mix: Mix{Read: 50, Update: 50}, Distribution: Zipfian},
	"b": {Name: "b", Mix: Mix{Read: 95, Update: 5}, Distribution: Zipfian},
	"c": {Name: "c", Mix: Mix{Read: 100}, Distribution: Zipfian},
	"d": {Name: "d", Mix: Mix{Read: 95, Insert: 5}, Distribution: Latest},
	"f": {Name: "f", Mix: Mix{Read: 50, RMW: 50}, Distribution: Zipfian},
}

// LookupWorkload finds a workload by name (a, b, c, d or f, any case).
func LookupWorkload(name string) (Workload, error) {
	w, ok := Workloads[strings.ToLower(name)]
	if !ok {
		return Workload{}, fmt.Errorf("workload %q: want a, b, c, d or f", name)
	}
	return w, nil
}
