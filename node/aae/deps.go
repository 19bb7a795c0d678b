package aae

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

// Store is the part of the node's storage anti-entropy uses: reads and
// unsynced syncs of objects with one WAL sync per batch, filtered
// partition scans for key lists, a cut snapshot for rebuilds, and the
// saved trees. *store.Store satisfies it.
type Store interface {
	Get(p uint32, bucket string, key []byte) (dvv.Object, bool, error)
	ModifyUnsynced(p uint32, bucket string, key []byte, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, error)
	SyncWAL() error
	ScanPartitionFiltered(p uint32, keep func(bucket string, key []byte) bool, fn func(bucket string, key []byte, obj dvv.Object) (bool, error)) error
	CutSnapshot(cut func()) (*store.Snapshot, error)
	AAERecords(fn func(r store.AAERecord) error) error
	DeleteAAERecords() error
	ObjectPartitions() ([]uint32, error)
	Stats() store.Stats
	// Pruning (prune.go): the actors this node retired, those peers
	// pruned, and the hints this node keeps.
	RetiredActors(p uint32) []string
	RetireActors(p uint32, actors []string) error
	HintStats() map[string]store.HintOwnerStats
	GetHint(r store.HintRef) (dvv.Object, bool, error)
}

// Peers calls another node by name. node's implementation resolves the
// address from membership and marks a node that refuses connections down
// for its requests too.
type Peers interface {
	Call(ctx context.Context, node string, t wire.Type, req, resp any) error
}

// Members is the membership view anti-entropy needs: the ring (which
// partitions this node replicates, with whom) and who is alive. Which
// peers came back is told separately (AAE.PeersBack).
type Members interface {
	Ring() *ring.Ring
	// ReplicationFactor is the number of distinct nodes holding each key
	// on r: N, or the whole ring when it has fewer members.
	ReplicationFactor(r *ring.Ring) int
	Alive(node string) bool
}

// Deps is what an AAE uses, and nothing else.
type Deps struct {
	// Name is this node's name.
	Name    string
	Store   Store
	Peers   Peers
	Members Members
	// Trees are the trees the store's write hook keeps (NewTrees, hooked
	// into the store's options before it opened). Nil when anti-entropy
	// is off.
	Trees *Trees
	// CheckKey reports whether (bucket, key) is a valid key of partition
	// p on this node's ring, with an error wrapping
	// cairn.ErrInvalidArgument when not. Every key a peer names is checked
	// before anything is read or written.
	CheckKey func(p uint32, bucket string, key []byte) error
	// MaxFrame is the frame limit of the node's peer connections: a fetch
	// answer or a push is never larger. Default wire.DefaultMaxFrame.
	MaxFrame int
	// Mode is how a bucket resolves concurrent writes (its conflict
	// property): every object merged here is merged by it, as replicas
	// and coordinators merge. Default: siblings for every bucket.
	Mode func(bucket string) dvv.Mode
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives state changes. Default: no logs.
	Logger *zap.Logger
	// Registry receives anti-entropy's metrics: the node's private
	// registry. Default: a registry of the AAE's own, unexported.
	Registry prometheus.Registerer
}

func (d Deps) withDefaults(enabled bool) (Deps, error) {
	var errs []error
	if d.Name == "" {
		errs = append(errs, errors.New("aae: deps: a node name is required"))
	}
	if d.Store == nil || d.Peers == nil || d.Members == nil || d.CheckKey == nil {
		errs = append(errs, errors.New("aae: deps: store, peers, members and key check are required"))
	}
	if enabled && d.Trees == nil {
		errs = append(errs, errors.New("aae: deps: trees are required when anti-entropy is on"))
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
