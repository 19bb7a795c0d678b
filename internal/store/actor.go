package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// startIncarnation runs once in Open. A running marker left by the previous
// Store means it never reached Close, so writes it made visible (to readers
// of this node, and through them to other replicas) may be missing from disk
// now: pebble publishes a write before its fsync completes, and with
// NoSyncWrites it may never have been synced at all. The actors that minted
// those dots are retired so no dot is ever minted twice.
func (s *Store) startIncarnation() error {
	_, closer, err := s.db.Get(runningKey)
	switch {
	case err == nil:
		closer.Close()
		s.uncleanStart = true
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("store: read the running marker: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if s.uncleanStart {
		for _, kind := range []byte{incarnationActor, incarnationHintActor} {
			if _, err := s.recordRetiredActors(b, kind, nil); err != nil {
				return fmt.Errorf("store: record retired actors: %w", err)
			}
			start := []byte{prefixIncarnation, kind}
			if err := b.DeleteRange(start, upperBound(start), nil); err != nil {
				return fmt.Errorf("store: retire actors: %w", err)
			}
		}
	}
	if err := b.Set(runningKey, nil, nil); err != nil {
		return fmt.Errorf("store: set the running marker: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: start incarnation: %w", err)
	}
	return s.loadRetired()
}

// Actor returns this node's actor id for partition p, creating and
// persisting (synced) a fresh random one the first time.
//
// An actor id belongs to one incarnation of this node's copy of p (DESIGN
// section 3, MUST): a fresh directory, DropPartition, or a restart after an
// unclean shutdown each lead to a new id. Concurrent first calls agree.
func (s *Store) Actor(p uint32) (string, error) {
	if s.closing.Load() {
		return "", ErrClosed
	}
	if a, ok := s.actors.Load(p); ok {
		return a.(string), nil
	}
	if err := s.enter(); err != nil {
		return "", err
	}
	defer s.leave()

	k := actorKey(p)
	mu := s.stripeOf(k)
	mu.Lock()
	defer mu.Unlock()
	if a, ok := s.actors.Load(p); ok {
		return a.(string), nil
	}
	v, closer, err := s.db.Get(k)
	if err == nil {
		actor := string(v)
		closer.Close()
		if actor == "" {
			return "", fmt.Errorf("%w: empty actor id for partition %d", ErrCorrupt, p)
		}
		s.actors.Store(p, actor)
		return actor, nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return "", fmt.Errorf("store: read actor of partition %d: %w", p, err)
	}
	actor, err := s.newActor()
	if err != nil {
		return "", err
	}
	if err := s.db.Set(k, []byte(actor), pebble.Sync); err != nil {
		return "", fmt.Errorf("store: persist actor of partition %d: %w", p, err)
	}
	s.actors.Store(p, actor)
	return actor, nil
}

func (s *Store) newActor() (string, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("store: actor id: %w", err)
	}
	return s.opts.Node + "." + hex.EncodeToString(r[:]), nil
}

// DropPartition deletes every object of partition p and its actor, in one
// synced batch: the next write to p takes a new actor. Callers stop writing
// to p before dropping it (an actor id fetched earlier must not be used
// afterwards); a write racing with the drop may survive it.
//
// It holds every key's lock while it commits, so that no write and no
// cache fill interleaves with the deletion (cache.go); the fsync is waited
// for after they are released. Disk space comes back as compactions reach
// the deleted range.
func (s *Store) DropPartition(p uint32) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	pending, err := s.dropPartitionLocked(p)
	if err != nil {
		return fmt.Errorf("store: drop partition %d: %w", p, err)
	}
	if err := pending.wait(); err != nil {
		return fmt.Errorf("store: drop partition %d: %w", p, err)
	}
	return nil
}

func (s *Store) dropPartitionLocked(p uint32) (pendingSync, error) {
	s.lockAll()
	defer s.unlockAll()
	for i := range s.stripes {
		s.stripes[i].beginWrite()
	}
	defer func() {
		for i := range s.stripes {
			s.stripes[i].endWrite()
		}
	}()
	start := partitionPrefix(p)
	// Whether the batch commits or not, what the cache held of p may no
	// longer be what pebble holds.
	defer s.cache.removePrefix(start)
	b := s.db.NewBatch()
	if err := b.DeleteRange(start, upperBound(start), nil); err != nil {
		return pendingSync{}, errors.Join(err, b.Close())
	}
	retired, err := s.recordRetiredActors(b, incarnationActor, &p)
	if err != nil {
		return pendingSync{}, errors.Join(err, b.Close())
	}
	if err := b.Delete(actorKey(p), nil); err != nil {
		return pendingSync{}, errors.Join(err, b.Close())
	}
	pending, err := s.commitBatch(b, true)
	if err != nil {
		return pendingSync{}, err
	}
	s.actors.Delete(p)
	for _, a := range retired {
		s.retired.add(p, a)
	}
	if h := s.opts.OnPartitionDrop; h != nil {
		h(p)
	}
	return pending, nil
}
