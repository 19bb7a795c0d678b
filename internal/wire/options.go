package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// Quorum is a replica count on the wire: a number (0 and up), or one of the
// symbolic values below, resolved by the coordinator against the key's
// replication factor.
type Quorum int32

// Symbolic quorums. QuorumDefault means "the bucket's or node's default" and
// is what a request that says nothing carries.
const (
	QuorumDefault  Quorum = -1
	QuorumOne      Quorum = -2
	QuorumMajority Quorum = -3
	QuorumAll      Quorum = -4
)

// ParseQuorum reads a count ("2") or a symbolic value ("one", "quorum",
// "all", "default").
func ParseQuorum(s string) (Quorum, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "one":
		return QuorumOne, nil
	case "quorum", "majority":
		return QuorumMajority, nil
	case "all":
		return QuorumAll, nil
	case "default", "":
		return QuorumDefault, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a count nor one|quorum|all", s)
	}
	return Quorum(n), nil
}

// String prints what ParseQuorum reads.
func (q Quorum) String() string {
	switch q {
	case QuorumDefault:
		return "default"
	case QuorumOne:
		return "one"
	case QuorumMajority:
		return "quorum"
	case QuorumAll:
		return "all"
	}
	return strconv.Itoa(int(q))
}

// Resolve turns q into a count for replication factor n, with def standing
// for QuorumDefault. It rejects unknown symbolic values; whether a count
// fits n is the coordinator's check (quorum.Spec.Validate), which names the
// field.
func (q Quorum) Resolve(n, def int) (int, error) {
	switch q {
	case QuorumDefault:
		return def, nil
	case QuorumOne:
		return 1, nil
	case QuorumMajority:
		return n/2 + 1, nil
	case QuorumAll:
		return n, nil
	}
	if q < 0 {
		return 0, fmt.Errorf("%d is neither a count nor one|quorum|all", q)
	}
	return int(q), nil
}

// Options are a request's consistency choices (DESIGN section 5). Fields a
// request leaves out keep their DefaultOptions values.
type Options struct {
	R  Quorum `msgpack:"r"`
	W  Quorum `msgpack:"w"`
	PR Quorum `msgpack:"pr"`
	PW Quorum `msgpack:"pw"`
	DW Quorum `msgpack:"dw"`
	// TimeoutMs is the request's deadline in milliseconds; 0 is the node's
	// default.
	TimeoutMs uint32 `msgpack:"timeout_ms"`
	// NoSloppy counts primary replicas only: no fallback stands in.
	NoSloppy bool `msgpack:"no_sloppy"`
	// NotFoundStrict makes a replica's not-found answer not count toward R
	// (Riak's notfound_ok=false). The zero value is notfound_ok on.
	NotFoundStrict bool `msgpack:"notfound_strict"`
}

// DefaultOptions is a request that takes every default.
func DefaultOptions() Options {
	return Options{R: QuorumDefault, W: QuorumDefault, PR: QuorumDefault, PW: QuorumDefault, DW: QuorumDefault}
}
