package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// ErrClosed is returned by every method called after Close began. It wraps
// cairn.ErrUnavailable: the node is shutting down.
var ErrClosed = fmt.Errorf("store closed: %w", cairn.ErrUnavailable)

// Store is one node's pebble database. Its methods are safe for concurrent
// use.
type Store struct {
	db      *pebble.DB
	opts    Options
	stripes []stripe
	cache   *recordCache
	// actors caches the actor id of each partition (uint32 -> string) so the
	// write path reads it without touching pebble or taking a lock.
	actors sync.Map

	// Close waits for calls in flight; inflight and closing form the gate (see
	// enter). drained is closed by the last call to leave once closing is set.
	inflight    atomic.Int64
	closing     atomic.Bool
	drained     chan struct{}
	drainedOnce sync.Once
	closeErr    error
	closeOnce   sync.Once

	uncleanStart bool
	retired      retiredSet
	counters     counters
	hints        hintState
	floors       floors
	witnessMu    sync.Mutex
	dirID        string // DirID's answer once known; under witnessMu
}

// stripe is one per-key lock, padded to a cache line so that goroutines
// locking neighbouring stripes do not slow each other down.
type stripe struct {
	sync.Mutex
	// gen counts the starts and ends of object writes under the lock, so it
	// is odd while one is under way: a read that saw it even and unchanged
	// raced no write (cache.go).
	gen atomic.Uint64
	_   [64 - 16]byte
}

// beginWrite and endWrite bracket a write of object keys under the lock.
func (st *stripe) beginWrite() { st.gen.Add(1) }
func (st *stripe) endWrite()   { st.gen.Add(1) }

// Open validates o and opens (or creates) the database in o.Dir.
//
// If the previous Store on this directory did not Close (the process was
// killed, the machine lost power), every actor id is forgotten: writes that
// other nodes may have seen can be missing from this copy, and an actor that
// minted them must not mint again (doc.go, "Incarnations").
func Open(o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Store{
		opts:    o,
		stripes: make([]stripe, o.LockStripes),
		cache:   newRecordCache(o.ObjectCacheBytes, cacheShards),
		drained: make(chan struct{}),
	}
	popts := o.pebbleOptions(&s.counters)
	db, err := pebble.Open(o.Dir, popts)
	if err != nil {
		return nil, fmt.Errorf("store: open pebble in %s: %w", o.Dir, err)
	}
	s.db = db
	if err := s.startIncarnation(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if err := s.loadHints(); err != nil {
		return nil, errors.Join(fmt.Errorf("store: load hints: %w", err), db.Close())
	}
	return s, nil
}

// enter admits a call unless Close has begun. Every admitted call must leave.
// The gate is two atomics rather than a lock so that it never serialises
// callers; Close sets closing and then waits until inflight drops to zero.
func (s *Store) enter() error {
	s.inflight.Add(1)
	if s.closing.Load() {
		s.leave()
		return ErrClosed
	}
	return nil
}

func (s *Store) leave() {
	if s.inflight.Add(-1) == 0 && s.closing.Load() {
		s.drainedOnce.Do(func() { close(s.drained) })
	}
}

// Close waits for calls in flight (a running ScanPartition stops at its next
// object), records a clean shutdown, and closes pebble, stopping all of its
// goroutines. Calls made after Close began return ErrClosed. Closing twice
// returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		if s.inflight.Load() > 0 {
			<-s.drained
		}
		// Deleting the marker with a synced write also syncs every write
		// before it: the next Open knows nothing acknowledged was lost.
		err := s.closeBatch()
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}

// Get returns the stored object of (partition, bucket, key); found=false when
// absent. An object of tombstones only is present: found is about the record,
// not about live values.
func (s *Store) Get(p uint32, bucket string, key []byte) (dvv.Object, bool, error) {
	return s.get(p, bucket, key, true)
}

// GetCached is Get for a caller that must not wait on the disk: it reads
// the object cache only. cached is false when the key is not in the cache,
// which says nothing of whether it is stored.
func (s *Store) GetCached(p uint32, bucket string, key []byte) (obj dvv.Object, cached bool, err error) {
	return s.get(p, bucket, key, false)
}

func (s *Store) get(p uint32, bucket string, key []byte, orDisk bool) (dvv.Object, bool, error) {
	k, err := objectKey(p, bucket, key)
	if err != nil {
		return dvv.Object{}, false, err
	}
	if err := s.enter(); err != nil {
		return dvv.Object{}, false, err
	}
	defer s.leave()
	st, h := s.stripeFor(k)
	if !orDisk {
		return s.cachedObject(k, h)
	}
	return s.readObject(k, h, st, st.gen.Load())
}

// cachedObject reads k from the object cache only.
func (s *Store) cachedObject(k []byte, h uint64) (dvv.Object, bool, error) {
	rec, ok := s.cache.get(h, k)
	if !ok {
		return dvv.Object{}, false, nil
	}
	s.counters.cacheHits.Add(1)
	obj, err := decodeObject(rec)
	if err != nil {
		return dvv.Object{}, false, fmt.Errorf("store: read %x: %w", k, err)
	}
	return obj, true, nil
}

// readObject reads k from the cache, else from pebble. A record read from
// pebble is cached when fill is set and no write under that stripe started
// since its generation was gen; a writer, which holds the lock, passes nil
// and caches what it writes instead.
func (s *Store) readObject(k []byte, h uint64, fill *stripe, gen uint64) (dvv.Object, bool, error) {
	if obj, ok, err := s.cachedObject(k, h); ok || err != nil {
		return obj, ok, err
	}
	s.counters.cacheMisses.Add(1)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return dvv.Object{}, false, nil
	}
	if err != nil {
		return dvv.Object{}, false, fmt.Errorf("store: read %x: %w", k, err)
	}
	defer closer.Close()
	obj, err := decodeObject(v)
	if err != nil {
		return dvv.Object{}, false, fmt.Errorf("store: read %x: %w", k, err)
	}
	if fill != nil {
		s.cache.fill(h, k, v, fill, gen)
	}
	return obj, true, nil
}

// Modify runs fn on the current object under the key's stripe lock, so a
// read-modify-write of one key never interleaves with another; different keys
// wait on each other only when their hashes pick the same stripe. fn must not
// call the Store.
//
// fn returns the new object and whether to write it. Modify returns the
// object after the call: the new one, or cur when fn chose not to write. An
// error from fn is returned as is and nothing is written.
//
// The write is fsynced before Modify returns when sync is true or the store
// was opened without NoSyncWrites. Concurrent synced writers share fsyncs:
// pebble's commit pipeline syncs the WAL once for every write queued behind
// the one in progress. The key's lock is released before the fsync (see
// commit.go), so writers of one key share fsyncs too.
func (s *Store) Modify(p uint32, bucket string, key []byte, sync bool, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, error) {
	return s.modify(p, bucket, key, sync || !s.opts.NoSyncWrites, fn)
}

// Durable waits until a write that was made visible is on disk (or
// returns why it is not). It must be called exactly once: the store does
// not close while a write's durability is still to be waited for.
type Durable func() error

// ModifyAsync is Modify that returns once the write is visible, before its
// fsync: the caller may send the object on (to other replicas) while the
// disk catches up, and must call the returned Durable, once, before
// acknowledging the write. A write that was not synced, or not made, is
// durable at once.
func (s *Store) ModifyAsync(p uint32, bucket string, key []byte, sync bool, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, Durable, error) {
	k, err := objectKey(p, bucket, key)
	if err != nil {
		return dvv.Object{}, nil, err
	}
	if err := s.enter(); err != nil {
		return dvv.Object{}, nil, err
	}
	obj, pending, err := s.modifyLocked(p, bucket, key, k, sync || !s.opts.NoSyncWrites, fn)
	if err != nil {
		s.leave()
		return dvv.Object{}, nil, err
	}
	return obj, s.durable(pending, k), nil
}

// durable waits for pending, then lets Close go on.
func (s *Store) durable(pending pendingSync, k []byte) Durable {
	return func() error {
		defer s.leave()
		if err := pending.wait(); err != nil {
			return fmt.Errorf("store: sync write %x: %w", k, err)
		}
		return nil
	}
}

func (s *Store) modify(p uint32, bucket string, key []byte, sync bool, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, error) {
	k, err := objectKey(p, bucket, key)
	if err != nil {
		return dvv.Object{}, err
	}
	if err := s.enter(); err != nil {
		return dvv.Object{}, err
	}
	defer s.leave()
	obj, pending, err := s.modifyLocked(p, bucket, key, k, sync, fn)
	if err != nil {
		return dvv.Object{}, err
	}
	if err := pending.wait(); err != nil {
		return dvv.Object{}, fmt.Errorf("store: sync write %x: %w", k, err)
	}
	return obj, nil
}

// modifyLocked is the part of modify done under the key's lock: read, fn,
// and a commit whose fsync the caller waits for once the lock is free.
func (s *Store) modifyLocked(p uint32, bucket string, key, k []byte, sync bool, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, pendingSync, error) {
	st, h := s.stripeFor(k)
	st.Lock()
	defer st.Unlock()
	cur, found, err := s.readObject(k, h, nil, 0)
	if err != nil {
		return dvv.Object{}, pendingSync{}, err
	}
	next, write, err := fn(cur, found)
	if err != nil {
		return dvv.Object{}, pendingSync{}, err
	}
	if !write {
		return cur, pendingSync{}, nil
	}
	rec, err := encodeObject(next)
	if err != nil {
		return dvv.Object{}, pendingSync{}, err
	}
	st.beginWrite()
	pending, err := s.commit(k, rec, sync)
	if err != nil {
		// The write may or may not be visible: forget the key.
		s.cache.remove(h, k)
		st.endWrite()
		return dvv.Object{}, pendingSync{}, fmt.Errorf("store: write %x: %w", k, err)
	}
	s.cache.put(h, k, rec)
	st.endWrite()
	s.counters.writes.Add(1)
	if sync {
		s.counters.syncedWrites.Add(1)
	}
	if hook := s.opts.OnObjectWrite; hook != nil {
		hook(p, bucket, key, cur, found, next)
	}
	return next, pending, nil
}

func (s *Store) stripeOf(k []byte) *sync.Mutex { return &s.stripes[s.stripeIndex(k)].Mutex }

// lockAll takes every stripe lock, in index order (as MarkDelivered takes
// several), so that no key is being written until unlockAll.
func (s *Store) lockAll() {
	for i := range s.stripes {
		s.stripes[i].Lock()
	}
}

func (s *Store) unlockAll() {
	for i := range s.stripes {
		s.stripes[i].Unlock()
	}
}

// stripeFor returns k's stripe and the hash that chose it.
func (s *Store) stripeFor(k []byte) (*stripe, uint64) {
	h := xxhash.Sum64(k)
	return &s.stripes[h&uint64(len(s.stripes)-1)], h
}

func (s *Store) stripeIndex(k []byte) int { return int(xxhash.Sum64(k) & uint64(len(s.stripes)-1)) }
