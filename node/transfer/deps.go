package transfer

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

// Store is the part of the node's storage transfer uses. *store.Store
// satisfies it.
type Store interface {
	CutSnapshot(cut func()) (*store.Snapshot, error)
	ModifyUnsynced(p uint32, bucket string, key []byte, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, error)
	SyncWAL() error
	GetMeta(name string) ([]byte, bool, error)
	PutMeta(name string, value []byte) error
	DeleteMeta(name string) error
	DropPartition(p uint32) error
}

// Peers calls another node by name.
type Peers interface {
	Call(ctx context.Context, node string, t wire.Type, req, resp any) error
}

// Members is the membership view transfer needs.
type Members interface {
	// Placement is the change in flight, if any.
	Placement() *ring.Placement
	// Up reports whether node should be sent to now.
	Up(node string) bool
	// PeersKnow reports whether every live peer advertises the change to
	// the ring of version next.
	PeersKnow(next uint64) bool
	// PeersAt reports whether every live peer builds the ring of version
	// v (the ring in effect), so none reads by an older one.
	PeersAt(v uint64) bool
	// Holds reports whether node confirmed it holds partition p for the
	// change to next.
	Holds(node string, next uint64, p uint32) bool
	// MarkHave records that this node holds p for the change to next.
	MarkHave(next uint64, p uint32)
	// Activate makes this node active if it is joining and every
	// partition flipped; it reports whether it did.
	Activate() bool
	// Depart takes this node out of the ring if it is leaving and every
	// partition of its change flipped; it reports whether it did.
	Depart() bool
}

// Deps is what a Transfer uses, and nothing else.
type Deps struct {
	Name    string
	Store   Store
	Peers   Peers
	Members Members
	// CheckKey reports whether (bucket, key) is a valid key of partition p,
	// with an error wrapping cairn.ErrInvalidArgument when not.
	CheckKey func(p uint32, bucket string, key []byte) error
	// MaxFrame is the frame limit of the node's peer connections. Default
	// wire.DefaultMaxFrame.
	MaxFrame int
	// Mode is how a bucket resolves concurrent writes (its conflict
	// property): every object merged here is merged by it, as replicas
	// and coordinators merge. Default: siblings for every bucket.
	Mode func(bucket string) dvv.Mode
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives a line per state change. Default: no logs.
	Logger *zap.Logger
	// Registry receives the metrics. Default: a registry of its own.
	Registry prometheus.Registerer
}

func (d Deps) withDefaults() (Deps, error) {
	var errs []error
	if d.Name == "" {
		errs = append(errs, errors.New("transfer: deps: a node name is required"))
	}
	if d.Store == nil || d.Peers == nil || d.Members == nil || d.CheckKey == nil {
		errs = append(errs, errors.New("transfer: deps: store, peers, members and key check are required"))
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
