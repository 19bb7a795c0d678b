package quorum

import (
	"fmt"
	"strings"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
)

// Spec is a request's resolved consistency, in numbers of replicas.
type Spec struct {
	// N is the number of replicas of the key, and so of targets asked.
	N int
	// R is the number of answers a get waits for.
	R int
	// W is the number of acknowledgements a put or delete waits for.
	W int
	// PR is how many of the R answers must come from primaries rather
	// than fallbacks.
	PR int
	// PW is how many of the W acknowledgements must come from primaries.
	PW int
	// DW is how many of the W acknowledgements must be durable (fsynced).
	DW int
	// NotFoundOK makes a replica's not-found answer count toward R, like
	// Riak's notfound_ok (the default). When false, a get waits for R
	// replicas that hold the key, and answers not-found only once every
	// target has answered and at least R of them replied at all.
	NotFoundOK bool
	// Mode is how the bucket resolves concurrent writes: a get's merge
	// of the replies, and so what read repair sends, resolves by it.
	Mode dvv.Mode
}

// Validate reports an impossible request as an error wrapping
// cairn.ErrInvalidArgument that names every offending field ("r 4 exceeds
// n 3"). It checks only the fields op uses: get uses R and PR; put and
// delete use W, PW and DW. Refusing here, before any replica is asked, turns
// R > N into an immediate error instead of a request that waits for its
// deadline.
//
// PR > R or DW > W is not an error: such a request simply waits for the
// larger number.
func (s Spec) Validate(op string) error {
	type field struct {
		name     string
		value    int
		smallest int
	}
	var fields []field
	switch op {
	case "get":
		fields = []field{{"r", s.R, 1}, {"pr", s.PR, 0}}
	case "put", "delete":
		fields = []field{{"w", s.W, 1}, {"pw", s.PW, 0}, {"dw", s.DW, 0}}
	default:
		return cairn.InvalidArgument("unknown operation %q: want get, put or delete", op)
	}
	var problems []string
	if s.N < 1 {
		problems = append(problems, fmt.Sprintf("n %d must be at least 1", s.N))
	}
	for _, f := range fields {
		switch {
		case f.value < f.smallest:
			problems = append(problems, fmt.Sprintf("%s %d must be at least %d", f.name, f.value, f.smallest))
		case s.N >= 1 && f.value > s.N:
			// Only against a valid N: "r 1 exceeds n 0" would just repeat
			// the problem already reported for n.
			problems = append(problems, fmt.Sprintf("%s %d exceeds n %d", f.name, f.value, s.N))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return cairn.InvalidArgument("%s", strings.Join(problems, "; "))
}
