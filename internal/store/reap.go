package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cockroachdb/pebble/v2"
)

// Reaping tombstones. The store removes a key only on the node's word
// that no copy of an older version survives anywhere (node/reap.go holds
// the argument); what it guarantees itself is narrower:
//
//   - Reap removes a key only if it still holds exactly the tombstone the
//     caller checked: a write that raced the check is never removed.
//   - The actor of the partition never mints a dot it minted before for a
//     reaped key (DESIGN section 3, MUST): the highest counter it minted
//     in any reaped tombstone of the partition is kept (the floor), and a
//     write to a key the store does not hold starts above it (ReapFloor).
//     Without it, a new write to the key would reuse the dot (A, 1), which
//     a replica still holding the tombstone would take as already seen.
//   - The witness counter: every check this node answers for a reap is
//     recorded durably before the answer goes out, so a copy of the data
//     directory taken earlier can be told from the directory that answered
//     (BumpWitness).

// incarnationFloor keys a partition's floor: 'i' 'f' | partition BE ->
// actor id | counter BE (8 bytes).
const incarnationFloor byte = 'f'

func floorKey(p uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixIncarnation, incarnationFloor}, p)
}

// witnessName is the metadata name of the witness counter, dirIDName
// that of the directory's identity.
const (
	witnessName = "reap.witness"
	dirIDName   = "dir.id"
)

// floor is the in-memory copy of a partition's floor record.
type floor struct {
	actor   string
	counter uint64
}

// floors holds every partition's floor, loaded lazily.
type floors struct {
	mu sync.Mutex
	m  map[uint32]floor
}

// ReapFloor returns the counter above which actor must mint for a key of
// p the store does not hold: 0 unless a tombstone reaped from p carried a
// dot of actor. Call it under the key's write (from a Modify fn) so that
// a reap of the key cannot land between it and the write.
func (s *Store) ReapFloor(p uint32, actor string) (uint64, error) {
	f, err := s.loadFloor(p)
	if err != nil || f.actor != actor {
		return 0, err
	}
	return f.counter, nil
}

func (s *Store) loadFloor(p uint32) (floor, error) {
	s.floors.mu.Lock()
	defer s.floors.mu.Unlock()
	if f, ok := s.floors.m[p]; ok {
		return f, nil
	}
	v, closer, err := s.db.Get(floorKey(p))
	var f floor
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return floor{}, fmt.Errorf("store: read the reap floor of partition %d: %w", p, err)
	default:
		defer closer.Close()
		if len(v) < 9 {
			return floor{}, fmt.Errorf("%w: reap floor of partition %d is %d bytes", ErrCorrupt, p, len(v))
		}
		f = floor{actor: string(v[:len(v)-8]), counter: binary.BigEndian.Uint64(v[len(v)-8:])}
	}
	if s.floors.m == nil {
		s.floors.m = map[uint32]floor{}
	}
	s.floors.m[p] = f
	return f, nil
}

// Reap removes (p, bucket, key) if the store holds exactly want there, an
// object of tombstones only, and reports whether it did. The floor of the
// partition's actor is raised past the tombstone's dots in the removal's
// batch.
func (s *Store) Reap(p uint32, bucket string, key []byte, want dvv.Object) (bool, error) {
	k, err := objectKey(p, bucket, key)
	if err != nil {
		return false, err
	}
	if want.Found() || len(want.Siblings) == 0 {
		return false, cairn.InvalidArgument("reap %x: only an object of tombstones is reaped", k)
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()
	actor, err := s.Actor(p)
	if err != nil {
		return false, err
	}
	st, h := s.stripeFor(k)
	st.Lock()
	defer st.Unlock()
	cur, found, err := s.readObject(k, h, nil, 0)
	if err != nil {
		return false, err
	}
	if !found || !cur.Equal(want) {
		return false, nil
	}
	f, err := s.loadFloor(p)
	if err != nil {
		return false, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(k, nil); err != nil {
		return false, err
	}
	raised := f
	if f.actor != actor {
		raised = floor{actor: actor}
	}
	raised.counter = max(raised.counter, cur.VV[actor])
	if raised != f {
		v := binary.BigEndian.AppendUint64([]byte(raised.actor), raised.counter)
		if err := b.Set(floorKey(p), v, nil); err != nil {
			return false, err
		}
	}
	// Not synced: a reap lost to a crash leaves the tombstone, which a
	// later pass reaps again, and the floor only matters to the actor
	// that minted the dots, which an unclean start retires anyway.
	// Written before the next synced write, and Close syncs.
	st.beginWrite()
	err = b.Commit(pebble.NoSync)
	s.cache.remove(h, k)
	st.endWrite()
	if err != nil {
		// The removal may or may not have happened; the floor in memory
		// is raised anyway, which costs nothing but skipped counters.
		s.setFloor(p, raised)
		return false, fmt.Errorf("store: reap %x: %w", k, err)
	}
	s.setFloor(p, raised)
	s.counters.reaped.Add(1)
	if hook := s.opts.OnObjectWrite; hook != nil {
		hook(p, bucket, key, cur, true, dvv.Object{})
	}
	return true, nil
}

func (s *Store) setFloor(p uint32, f floor) {
	s.floors.mu.Lock()
	defer s.floors.mu.Unlock()
	if s.floors.m == nil {
		s.floors.m = map[uint32]floor{}
	}
	s.floors.m[p] = f
}

// Witness returns the witness counter: how many reap checks this
// directory answered.
func (s *Store) Witness() (uint64, error) {
	v, ok, err := s.GetMeta(witnessName)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: reap witness is %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// BumpWitness adds one to the witness counter, synced, and returns it.
// Calls are serialised: two checks never record the same count.
func (s *Store) BumpWitness() (uint64, error) {
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	w, err := s.Witness()
	if err != nil {
		return 0, err
	}
	w++
	if err := s.PutMeta(witnessName, binary.BigEndian.AppendUint64(nil, w)); err != nil {
		return 0, err
	}
	return w, nil
}

// CompactObjects compacts the whole object keyspace: after many keys were
// reaped, their space comes back to the file system now rather than when
// pebble's own compactions reach them.
func (s *Store) CompactObjects(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	start := []byte{prefixObject}
	if err := s.db.Compact(ctx, start, upperBound(start), false); err != nil {
		return fmt.Errorf("store: compact objects: %w", err)
	}
	return nil
}

// DirID returns the identity of the data directory: random, made the
// first time it is asked for and kept for good. A copy of the directory
// has the same identity; a directory started empty has a new one. So the
// witness counts peers recorded are compared only with the directory that
// gave them.
func (s *Store) DirID() (string, error) {
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	if s.dirID != "" {
		return s.dirID, nil // asked at every reap check: read once
	}
	v, ok, err := s.GetMeta(dirIDName)
	if err != nil {
		return "", err
	}
	if ok {
		s.dirID = string(v)
		return s.dirID, nil
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: make the directory id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if err := s.PutMeta(dirIDName, []byte(id)); err != nil {
		return "", err
	}
	s.dirID = id
	return id, nil
}
