package cairn

import (
	"errors"
	"fmt"
	"strings"
)

// The outcomes of a request other than success. Each is defined here once.
var (
	// ErrNotFound: the key has no live sibling (never written, or deleted).
	ErrNotFound = errors.New("not found")
	// ErrQuorum: fewer replicas than the request asked for answered; a
	// *QuorumError carries the counts.
	ErrQuorum = errors.New("quorum not met")
	// ErrTimeout: the request's deadline passed before it could be answered.
	ErrTimeout = errors.New("timeout")
	// ErrInvalidArgument: the request itself is wrong (bad bucket, key too
	// large, R > N); retrying it cannot help.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrOverloaded: the node refused the request to protect itself.
	ErrOverloaded = errors.New("overloaded")
	// ErrUnauthorized: the handshake's credentials were refused.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrProtocol: the peer broke the protocol (bad frame, wrong cluster,
	// unsupported version); the connection is closed.
	ErrProtocol = errors.New("protocol error")
	// ErrUnavailable: the node cannot serve the request now (shutting down,
	// not ready).
	ErrUnavailable = errors.New("unavailable")
	// ErrInternal: the node failed in a way that is its own fault.
	ErrInternal = errors.New("internal error")
)

// ReplicaOutcome is what one replica did for a request.
type ReplicaOutcome struct {
	Node    string
	OK      bool
	Primary bool
	Err     string // empty when OK
}

// QuorumError says how many replicas a request needed and how many it got.
// Need and Got count whichever constraint failed (W, PW, DW, R or PR), named
// by Kind.
type QuorumError struct {
	Op   string // get, put, delete
	Kind string // r, w, pr, pw, dw
	Need int
	Got  int
	Of   int // targets asked
	// TimedOut is set when the request's deadline passed before the
	// quorum was decided: errors.Is(err, ErrTimeout) then holds too.
	TimedOut bool
	Replicas []ReplicaOutcome
}

func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: quorum not met: need %s=%d, got %d of %d", e.Op, e.Kind, e.Need, e.Got, e.Of)
	if e.TimedOut {
		b.WriteString(" before the deadline")
	}
	sep := "; "
	for _, r := range e.Replicas {
		if r.OK {
			continue
		}
		fmt.Fprintf(&b, "%s%s: %s", sep, r.Node, r.Err)
		sep = ", "
	}
	return b.String()
}

// Is makes errors.Is(err, ErrQuorum) hold for every *QuorumError, and
// errors.Is(err, ErrTimeout) for one decided by the deadline.
func (e *QuorumError) Is(target error) bool {
	return target == ErrQuorum || (e.TimedOut && target == ErrTimeout)
}

// InvalidArgument returns an error wrapping ErrInvalidArgument with a message
// that tells the caller what to change.
func InvalidArgument(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}
