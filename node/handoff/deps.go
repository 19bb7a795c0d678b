package handoff

import (
	"context"
	"errors"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Store is the part of the node's storage handoff uses: the hint keyspace
// on the sending side, unsynced object writes and one WAL sync per batch
// on the receiving side. *store.Store satisfies it.
type Store interface {
	HintStats() map[string]store.HintOwnerStats
	HintCursor(owner string) ([]byte, error)
	ScanHints(owner string, after []byte, fn func(h store.Hint) (bool, error)) error
	MarkDelivered(owner string, hs []store.Hint, cursor []byte) (int, error)
	CloseHintEpisode(p uint32) (bool, error)
	ModifyUnsynced(p uint32, bucket string, key []byte, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, error)
	SyncWAL() error
}

// Peers calls another node by name. node's implementation resolves the
// address from membership and marks a node that refuses connections down
// for its requests too.
type Peers interface {
	Call(ctx context.Context, node string, t wire.Type, req, resp any) error
}

// Members is the membership view handoff needs: whether an owner should
// be delivered to now (a member, alive, and not recently refusing
// connections), whether it was removed from the ring for good, and the
// ring that names the new owners of a removed member's partitions.
type Members interface {
	Up(node string) bool
	// Removed reports whether an operator removed the member (final: the
	// name never owns partitions again). A member that is merely down is
	// not removed.
	Removed(node string) bool
	Ring() *ring.Ring
	// ReplicationFactor is the number of distinct nodes holding each key
	// on r: N, or the whole ring when it has fewer members.
	ReplicationFactor(r *ring.Ring) int
}

// Deps is what a Handoff uses, and nothing else.
type Deps struct {
	// Name is this node's name, as it answers the hints status.
	Name    string
	Store   Store
	Peers   Peers
	Members Members
	// CheckKey reports whether (bucket, key) is a valid key of partition
	// p on this node's ring, with an error wrapping
	// cairn.ErrInvalidArgument when not. Every key a peer hands back is
	// checked before anything is written.
	CheckKey func(p uint32, bucket string, key []byte) error
	// MaxFrame is the frame limit of the node's peer connections: a batch
	// is never larger, however much credit the owner gives. Default
	// wire.DefaultMaxFrame.
	MaxFrame int
	// Mode is how a bucket resolves concurrent writes (its conflict
	// property): every object merged here is merged by it, as replicas
	// and coordinators merge. Default: siblings for every bucket.
	Mode func(bucket string) dvv.Mode
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives state changes (a drain started, failing, recovered,
	// complete). Default: no logs.
	Logger *zap.Logger
	// Registry receives handoff's metrics: the node's private registry.
	// Default: a registry of the Handoff's own, unexported.
	Registry prometheus.Registerer
}

// withDefaults fills the optional fields and reports every missing one.
func (d Deps) withDefaults() (Deps, error) {
	var errs []error
	if d.Name == "" {
		errs = append(errs, errors.New("handoff: deps: a node name is required"))
	}
	if d.Store == nil || d.Peers == nil || d.Members == nil || d.CheckKey == nil {
		errs = append(errs, errors.New("handoff: deps: store, peers, members and key check are required"))
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Mode == nil {
		d.Mode = func(string) dvv.Mode { return dvv.Siblings }
	}
	if d.MaxFrame <= 0 {
		d.MaxFrame = wire.DefaultMaxFrame
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	return d, errors.Join(errs...)
}
