package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/antientropy"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/store"
	"go.uber.org/zap"
)

// aaeTrees holds one Merkle tree per partition this node has data for,
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
type aaeTrees struct {
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

func newAAETrees(partitions int) *aaeTrees {
	return &aaeTrees{shape: antientropy.DefaultShape(), slots: make([]atomic.Pointer[treeSlot], partitions)}
}

// hook installs the trees into the store's options.
func (t *aaeTrees) hook(o *store.Options) {
	o.OnObjectWrite = t.onWrite
	o.OnPartitionDrop = t.onDrop
	o.SaveOnClose = t.save
}

// onWrite is the store's OnObjectWrite: under the key's lock, so the writes
// of one key arrive in order and each one's old version is the previous
// one's new.
func (t *aaeTrees) onWrite(p uint32, bucket string, key []byte, old dvv.Object, _ bool, obj dvv.Object) {
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
func (t *aaeTrees) create(p uint32) *treeSlot {
	tree, _ := antientropy.NewTree(t.shape) // the default shape is valid
	t.slots[p].CompareAndSwap(nil, &treeSlot{tree: tree, ready: true})
	return t.slots[p].Load() // this tree, or the one a concurrent call made
}

// onDrop is the store's OnPartitionDrop: the partition holds nothing now.
func (t *aaeTrees) onDrop(p uint32) {
	if int(p) >= len(t.slots) {
		return
	}
	tree, _ := antientropy.NewTree(t.shape)
	t.slots[p].Store(&treeSlot{tree: tree, ready: true})
}

// get returns partition p's tree, creating the empty tree of a partition
// without data; ok is false while the tree is being rebuilt.
func (t *aaeTrees) get(p uint32) (tree *antientropy.Tree, ok bool) {
	s := t.slots[p].Load()
	if s == nil {
		s = t.create(p)
	}
	return s.tree, s.ready
}

// ready reports whether p's tree can be compared now.
func (t *aaeTrees) ready(p uint32) bool {
	s := t.slots[p].Load()
	return s == nil || s.ready
}

// counts returns how many partitions have a tree and how many of those are
// not ready.
func (t *aaeTrees) counts() (trees, notReady int) {
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
func (t *aaeTrees) save() ([]store.AAERecord, error) {
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
func (t *aaeTrees) load(st *store.Store, log *zap.Logger) ([]uint32, error) {
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
func (a *aae) rebuildTrees(ctx context.Context, parts []uint32) {
	t := a.trees
	start := a.n.now()
	builders := make([]*antientropy.Builder, len(parts))
	for i := range parts {
		b, err := antientropy.NewBuilder(t.shape)
		if err != nil {
			a.n.log.Error("anti-entropy: cannot rebuild trees", zap.Error(err))
			return
		}
		builders[i] = b
	}
	snap, err := a.n.store.CutSnapshot(func() {
		for i, p := range parts {
			t.slots[p].Store(&treeSlot{tree: builders[i].Tree()})
		}
	})
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			a.n.log.Error("anti-entropy: cannot rebuild trees", zap.Error(err))
		}
		return
	}
	defer func() { _ = snap.Close() }()
	pacer, err := antientropy.NewPacer(a.cfg.rebuild())
	if err != nil {
		a.n.log.Error("anti-entropy: cannot rebuild trees", zap.Error(err))
		return
	}
	keys := 0
	for i, p := range parts {
		b := builders[i]
		err := snap.ScanPartition(p, func(bucket string, key []byte, obj dvv.Object, size int) (bool, error) {
			b.Add(bucket, key, antientropy.Version(obj))
			keys++
			if keys%1024 == 0 && ctx.Err() != nil {
				return false, ctx.Err()
			}
			// Sleep in slices of 10 ms or more, not per key.
			if wait := time.Duration(pacer.Take(int64(a.n.now().Sub(start)), 1, size)); wait >= 10*time.Millisecond {
				timer := time.NewTimer(wait)
				defer timer.Stop()
				select {
				case <-ctx.Done():
					return false, ctx.Err()
				case <-timer.C:
				}
			}
			return true, nil
		})
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
				a.n.log.Error("anti-entropy: tree rebuild failed; the partitions left are not compared until the next start",
					zap.Uint32("partition", p), zap.Int("left", len(parts)-i), zap.Error(err))
			}
			return
		}
		t.slots[p].Store(&treeSlot{tree: b.Tree(), ready: true})
		a.stats.rebuilds.Add(1)
		a.dirty.Store(true)
		a.poke()
	}
	a.n.log.Info("anti-entropy: trees rebuilt", zap.Int("partitions", len(parts)), zap.Int("keys", keys),
		zap.Duration("took", a.n.now().Sub(start)))
}

// errTreeNotReady answers a peer's exchange while the tree is rebuilt; the
// peer retries later.
func errTreeNotReady(p uint32) error {
	return fmt.Errorf("%w: the anti-entropy tree of partition %d is being rebuilt", cairn.ErrUnavailable, p)
}
