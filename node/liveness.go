package node

import (
	"errors"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/node/coord"
)

// downFor is how long a node that failed a request (refused a connection,
// lost it, or stayed silent past the failover delay) is treated as down
// before memberlist's own verdict is trusted again; it keeps requests from
// dialling a dead node on every call in the seconds before gossip notices.
const downFor = 2 * time.Second

// liveness combines memberlist's view with recent request failures. It is
// the coordinator's coord.View.
type liveness struct {
	self  string
	alive func(node string) bool // memberlist's verdict
	now   func() time.Time

	mu   sync.Mutex
	down map[string]time.Time // node -> until
}

func newLiveness(self string, alive func(string) bool, now func() time.Time) *liveness {
	return &liveness{self: self, alive: alive, now: now, down: map[string]time.Time{}}
}

// Up reports whether a node should be asked: itself always; others when
// memberlist has them alive and no recent failure says otherwise.
func (l *liveness) Up(node string) bool {
	if node == l.self {
		return true
	}
	if !l.alive(node) {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.down[node]
	if ok && l.now().Before(until) {
		return false
	}
	delete(l.down, node)
	return true
}

// Failed marks node down for downFor when err says the node, not the
// request, is the problem: the connection could not be made or was lost,
// the node said it cannot serve, or it stayed silent. A node that answered
// with an error of the request's own (invalid argument, a quorum error of
// a forwarded write) is up.
func (l *liveness) Failed(node string, err error) {
	if node == l.self || !nodeFault(err) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down[node] = l.now().Add(downFor)
}

func nodeFault(err error) bool {
	return errors.Is(err, coord.ErrNotDelivered) || errors.Is(err, coord.ErrSilent) ||
		errors.Is(err, cairn.ErrUnavailable)
}

// up and markDown are the node's own uses of its liveness view.
func (n *Node) up(node string) bool             { return n.live.Up(node) }
func (n *Node) markDown(node string, err error) { n.live.Failed(node, err) }
