package antientropy

// Builder rebuilds a partition's tree from storage while writes go on. A
// tree is a XOR of per-key hashes, and XOR is commutative and associative,
// so the keys of a scan may come in any order, and the writes that land
// during the scan may be applied before, between or after them: the result
// is the tree an incremental Tree would hold, as long as each stored
// version is counted exactly once. The node keeps that promise with a cut:
//
//  1. Under the partition's write hook, create the Builder and, atomically
//     with respect to writes, take a storage snapshot (a pebble snapshot or
//     iterator) and start forwarding every later write to Builder.Update as
//     well as to the live tree.
//  2. Scan the snapshot, paced by a Pacer, calling Add for each key.
//  3. Swap the built tree in for the live one, again atomically with respect
//     to writes, and stop forwarding.
//
// A write is then either in the snapshot (seen by Add) or after it (seen by
// Update), never both. Requests never wait for the scan. Add and Update are
// safe for concurrent use.
type Builder struct {
	t *Tree
}

// NewBuilder starts an empty tree of the shape.
func NewBuilder(shape Shape) (*Builder, error) {
	t, err := NewTree(shape)
	if err != nil {
		return nil, err
	}
	return &Builder{t: t}, nil
}

// Add records one stored key at its version, as the scan finds it. An
// Absent version (an empty object) adds nothing.
func (b *Builder) Add(bucket string, key []byte, version uint64) {
	b.t.Update(bucket, key, Absent, version)
}

// Update records a write that landed after the snapshot the scan reads,
// exactly as Tree.Update does.
func (b *Builder) Update(bucket string, key []byte, from, to uint64) {
	b.t.Update(bucket, key, from, to)
}

// Keys is the number of keys added so far, net of writes.
func (b *Builder) Keys() int64 { return b.t.Keys() }

// Tree returns the tree built so far. After the scan and the swap, the
// caller stops using the Builder: the tree is shared, not copied.
func (b *Builder) Tree() *Tree { return b.t }
