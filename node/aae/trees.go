package aae

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"go.uber.org/zap"
)

// Trees holds one Merkle tree per partition this node has data for,
// kept current by the store's write hook: every write to the object
// keyspace (coordinated writes, replica syncs, read repair, handoff,
// anti-entropy's own repairs) XORs its old version out of its segment and
// its new one in. A tree is 8 KiB with the default shape, so 1,024
// partitions cost 8 MiB at most.
//
// A partition's slot is nil until the partition is first written (its tree
// is then created empty), or holds a treeSlot: a tree being rebuilt (not
// ready: kept current, but not yet comparable) or a ready one. Slots are
// atomic pointers so the write path takes no lock.
type Trees struct {
	shape antientropy.Shape
	slots []atomic.Pointer[treeSlot]
	// updates and updateNanos measure the write path's cost.
	updates, updateNanos atomic.Uint64
}

type treeSlot struct {
	// tree is nil while the partition waits for its rebuild's cut: writes
	// are not recorded, since the snapshot the rebuild reads holds them.
	tree  *antientropy.Tree
	ready bool
}

// pendingSlot marks partitions waiting for a rebuild.
var pendingSlot = &treeSlot{}

// NewTrees returns the trees of a node with that many partitions, none
// created yet.
func NewTrees(partitions int) *Trees {
	return &Trees{shape: antientropy.DefaultShape(), slots: make([]atomic.Pointer[treeSlot], partitions)}
}

// Hook installs the trees into the store's options, before it opens.
func (t *Trees) Hook(o *store.Options) {
	o.OnObjectWrite = t.OnWrite
	o.OnPartitionDrop = t.onDrop
	o.SaveOnClose = t.save
}

// OnWrite is the store's OnObjectWrite: under the key's lock, so the writes
// of one key arrive in order and each one's old version is the previous
// one's new.
func (t *Trees) OnWrite(p uint32, bucket string, key []byte, old dvv.Object, _ bool, obj dvv.Object) {
	if int(p) >= len(t.slots) {
		return
	}
	start := time.Now()
	s := t.slots[p].Load()
	if s == nil {
		s = t.create(p)
	}
	if s.tree != nil {
		if from, to := antientropy.Version(old), antientropy.Version(obj); from != to {
			s.tree.Update(bucket, key, from, to)
		}
	}
	t.updates.Add(1)
	t.updateNanos.Add(uint64(time.Since(start)))
}

// create gives a partition that had no data when the node started its
// first, empty, tree.
func (t *Trees) create(p uint32) *treeSlot {
	tree, _ := antientropy.NewTree(t.shape) // the default shape is valid
	t.slots[p].CompareAndSwap(nil, &treeSlot{tree: tree, ready: true})
	return t.slots[p].Load() // this tree, or the one a concurrent call made
}

// onDrop is the store's OnPartitionDrop: the partition holds nothing now.
func (t *Trees) onDrop(p uint32) {
	if int(p) >= len(t.slots) {
		return
	}
	tree, _ := antientropy.NewTree(t.shape)
	t.slots[p].Store(&treeSlot{tree: tree, ready: true})
}

// get returns partition p's tree, creating the empty tree of a partition
// without data; ok is false while the tree is being rebuilt.
func (t *Trees) get(p uint32) (tree *antientropy.Tree, ok bool) {
	s := t.slots[p].Load()
	if s == nil {
		s = t.create(p)
	}
	return s.tree, s.ready
}

// root is partition p's root, without creating a tree for a partition
// that holds nothing (its root is that of the empty tree, 0); ok is false
// while the tree is being rebuilt.
func (t *Trees) root(p uint32) (root uint64, ok bool) {
	s := t.slots[p].Load()
	if s == nil {
		return 0, true
	}
	if !s.ready {
		return 0, false
	}
	return s.tree.Root(), true
}

// counts returns how many partitions have a tree and how many of those are
// not ready.
func (t *Trees) counts() (trees, notReady int) {
	for i := range t.slots {
		if s := t.slots[i].Load(); s != nil {
			trees++
			if !s.ready {
				notReady++
			}
		}
	}
	return trees, notReady
}

// Saved trees live under 't' | partition (4 bytes, big-endian) in the
// store's anti-entropy keyspace.
const treeRecordKind = 't'

func treeRecordKey(p uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{treeRecordKind}, p)
}

// save is the store's SaveOnClose: every ready tree of a partition with
// keys, at the moment no write can follow.
func (t *Trees) save() ([]store.AAERecord, error) {
	var out []store.AAERecord
	for i := range t.slots {
		s := t.slots[i].Load()
		if s == nil || !s.ready || (s.tree.Keys() == 0 && s.tree.Root() == 0) {
			continue
		}
		b, err := s.tree.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("save the tree of partition %d: %w", i, err)
		}
		out = append(out, store.AAERecord{Key: treeRecordKey(uint32(i)), Value: b})
	}
	return out, nil
}

// load runs before the node accepts any write. It takes the trees saved by
// the last clean shutdown, deletes the saved copies (a crash later must
// never find a tree that writes have outlived), and returns the partitions
// holding data without a usable tree: after an unclean shutdown, all of
// them. Those are rebuilt in the background.
func (t *Trees) load(st Store, log *zap.Logger) ([]uint32, error) {
	saved := map[uint32]*antientropy.Tree{}
	unclean := st.Stats().UncleanStart
	if !unclean {
		err := st.AAERecords(func(r store.AAERecord) error {
			if len(r.Key) != 5 || r.Key[0] != treeRecordKind {
				return nil // not a tree: nothing this version reads
			}
			p := binary.BigEndian.Uint32(r.Key[1:])
			var tree antientropy.Tree
			if err := tree.UnmarshalBinary(r.Value); err != nil || tree.Shape() != t.shape || int(p) >= len(t.slots) {
				log.Warn("anti-entropy: saved tree unusable; rebuilding it", zap.Uint32("partition", p), zap.Error(err))
				return nil
			}
			saved[p] = &tree
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read saved trees: %w", err)
		}
	}
	if err := st.DeleteAAERecords(); err != nil {
		return nil, fmt.Errorf("delete saved trees: %w", err)
	}
	parts, err := st.ObjectPartitions()
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var rebuild []uint32
	for _, p := range parts {
		if int(p) >= len(t.slots) {
			log.Warn("anti-entropy: data for a partition beyond the ring's; not compared", zap.Uint32("partition", p))
			continue
		}
		if tree, ok := saved[p]; ok {
			t.slots[p].Store(&treeSlot{tree: tree, ready: true})
			continue
		}
		t.slots[p].Store(pendingSlot)
		rebuild = append(rebuild, p)
	}
	if len(rebuild) > 0 {
		log.Info("anti-entropy: rebuilding trees from storage in the background",
			zap.Int("partitions", len(rebuild)), zap.Int("loaded", len(saved)), zap.Bool("unclean_start", unclean))
	}
	return rebuild, nil
}

// rebuildTrees rebuilds the trees of parts from storage, paced, while
// requests go on. One cut for all of them: a snapshot taken with writes
// held off for an instant, at which every partition's slot switches from
// "not recorded" to a Builder's tree that the write hook keeps current
// from then on. Each partition's scan of the snapshot then adds what was
// stored before the cut, and the tree becomes ready. Every write is
// counted exactly once: in the snapshot, or by the hook after the cut.
//
// The background walk goes in partition order at the rebuild pace; an
// exchange that needs a partition first scans it at once (treeFor), so
// exchanges never wait for the whole rebuild.
func (a *AAE) rebuildTrees(ctx context.Context) {
	parts := a.rebuilding
	start := a.d.Now()
	rb, err := a.cut()
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			a.log.Error("anti-entropy: cannot rebuild trees", zap.Error(err))
		}
		return
	}
	defer rb.end()
	pacer, err := antientropy.NewPacer(a.cfg.rebuild())
	if err != nil {
		a.log.Error("anti-entropy: cannot rebuild trees", zap.Error(err))
		return
	}
	keys := 0
	pace := func(size int) error {
		keys++
		if keys%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		// Sleep in slices of 10 ms or more, not per key.
		if wait := time.Duration(pacer.Take(int64(a.d.Now().Sub(start)), 1, size)); wait >= 10*time.Millisecond {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		return nil
	}
	for i, p := range parts {
		if err := a.rebuildPartition(ctx, rb, p, pace); err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
				a.log.Error("anti-entropy: tree rebuild failed; the partitions left are not compared until the next start",
					zap.Uint32("partition", p), zap.Int("left", len(parts)-i), zap.Error(err))
			}
			return
		}
	}
	a.log.Info("anti-entropy: trees rebuilt", zap.Int("partitions", len(parts)), zap.Int("keys in the background", keys),
		zap.Duration("took", a.d.Now().Sub(start)))
}

// rebuild is a rebuild in progress: the snapshot of its cut and, for each
// partition not rebuilt yet, its builder.
type rebuild struct {
	// life is held shared by every scan of snap and exclusively to close
	// it, so the snapshot is closed only after the last scan.
	life   sync.RWMutex
	snap   *store.Snapshot
	closed bool

	mu   sync.Mutex
	left map[uint32]*partRebuild
}

type partRebuild struct {
	builder *antientropy.Builder
	claimed bool
	done    chan struct{} // closed when the partition's scan ended, well or not
}

// cut takes the rebuild's cut the first time it is called, by the
// background walk or by an exchange that needs a partition first,
// whichever comes first, and returns it.
func (a *AAE) cut() (*rebuild, error) {
	a.rebuildOnce.Do(func() { a.rb, a.rbErr = a.cutRebuild(a.rebuilding) })
	return a.rb, a.rbErr
}

func (a *AAE) cutRebuild(parts []uint32) (*rebuild, error) {
	t := a.trees
	rb := &rebuild{left: make(map[uint32]*partRebuild, len(parts))}
	for _, p := range parts {
		b, err := antientropy.NewBuilder(t.shape)
		if err != nil {
			return nil, err
		}
		rb.left[p] = &partRebuild{builder: b, done: make(chan struct{})}
	}
	snap, err := a.d.Store.CutSnapshot(func() {
		for p, pr := range rb.left {
			t.slots[p].Store(&treeSlot{tree: pr.builder.Tree()})
		}
	})
	if err != nil {
		return nil, err
	}
	rb.snap = snap
	return rb, nil
}

// end closes the rebuild's snapshot once no scan of it runs; partitions
// left are not rebuilt before the next start.
func (rb *rebuild) end() {
	rb.life.Lock()
	defer rb.life.Unlock()
	rb.closed = true
	_ = rb.snap.Close()
}

// rebuildPartition scans partition p of the rebuild's snapshot into its
// builder, calling each (for pacing) after every key, and makes its tree
// ready. A partition already rebuilt is done; one another goroutine scans
// is waited for.
func (a *AAE) rebuildPartition(ctx context.Context, rb *rebuild, p uint32, each func(size int) error) error {
	rb.life.RLock()
	defer rb.life.RUnlock()
	if rb.closed {
		return errRebuildOver
	}
	rb.mu.Lock()
	pr := rb.left[p]
	if pr == nil {
		rb.mu.Unlock()
		return nil
	}
	if pr.claimed {
		done := pr.done
		rb.mu.Unlock()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	pr.claimed = true
	rb.mu.Unlock()
	err := rb.snap.ScanPartition(p, func(bucket string, key []byte, obj dvv.Object, size int) (bool, error) {
		pr.builder.Add(bucket, key, antientropy.Version(obj))
		if each != nil {
			if err := each(size); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if err != nil {
		// Left unclaimed: the background walk or a later exchange tries
		// again while the snapshot is open. Those waiting find the tree
		// not ready.
		pr.claimed = false
		close(pr.done)
		pr.done = make(chan struct{})
		return err
	}
	a.trees.slots[p].Store(&treeSlot{tree: pr.builder.Tree(), ready: true})
	delete(rb.left, p)
	close(pr.done)
	a.stats.rebuilds.Add(1)
	return nil
}

// errRebuildOver: the rebuild stopped (shutdown, or a storage error)
// before this partition's turn.
var errRebuildOver = errors.New("the rebuild is over")

// treeFor returns partition p's tree, ready to compare: a partition still
// waiting for the background rebuild is rebuilt now, unpaced.
func (a *AAE) treeFor(ctx context.Context, p uint32) (*antientropy.Tree, error) {
	if tree, ready := a.trees.get(p); ready {
		return tree, nil
	}
	if len(a.rebuilding) > 0 {
		rb, err := a.cut()
		if err != nil {
			return nil, fmt.Errorf("%w: rebuilding the tree of partition %d: %w", cairn.ErrUnavailable, p, err)
		}
		if err := a.rebuildPartition(ctx, rb, p, func(int) error { return ctx.Err() }); err != nil {
			return nil, fmt.Errorf("%w: rebuilding the tree of partition %d: %w", cairn.ErrUnavailable, p, err)
		}
	}
	if tree, ready := a.trees.get(p); ready {
		return tree, nil
	}
	return nil, errTreeNotReady(p)
}

// errTreeNotReady answers a peer's exchange while the tree is rebuilt; the
// peer retries later.
func errTreeNotReady(p uint32) error {
	return fmt.Errorf("%w: the anti-entropy tree of partition %d is being rebuilt", cairn.ErrUnavailable, p)
}
