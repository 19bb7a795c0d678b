package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Retired actors. An actor id retires when the incarnation that minted
// under it ends without a clean Close, when its partition is dropped, or
// when a peer that retired it prunes it from a key this node holds (see
// RetireActors). A retired actor never mints again, which is what makes
// pruning its version-vector entries possible (docs/ARCHITECTURE.md,
// "Pruning retired actors"); the records say which entries those are.
// They are a few dozen bytes per actor and partition, kept for good: an
// actor forgotten here is merely never pruned.

// incarnationRetired keys a retired actor: 'i' 'x' | partition BE | actor
// id -> nothing.
const incarnationRetired byte = 'x'

func retiredPrefix(p uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixIncarnation, incarnationRetired}, p)
}

func retiredKey(p uint32, actor string) []byte {
	return append(retiredPrefix(p), actor...)
}

// retiredSet is the in-memory copy of the records, read on the write path
// (IsRetired) without touching pebble.
type retiredSet struct {
	mu     sync.RWMutex
	actors map[string]struct{}
	byPart map[uint32][]string
}

func (r *retiredSet) add(p uint32, actor string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.actors == nil {
		r.actors, r.byPart = map[string]struct{}{}, map[uint32][]string{}
	}
	if slices.Contains(r.byPart[p], actor) {
		return
	}
	r.actors[actor] = struct{}{}
	r.byPart[p] = append(r.byPart[p], actor)
}

// recordRetiredActors adds to b a retired record for every actor id the
// batch is about to delete (keys under 'i' kind), for startIncarnation and
// DropPartition, and returns the actors it recorded.
func (s *Store) recordRetiredActors(b *pebble.Batch, kind byte, only *uint32) (recorded []string, err error) {
	start := []byte{prefixIncarnation, kind}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: upperBound(start)})
	if err != nil {
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 6 || len(it.Value()) == 0 {
			continue
		}
		p := binary.BigEndian.Uint32(k[2:])
		if only != nil && p != *only {
			continue
		}
		actor := string(it.Value())
		if err := b.Set(retiredKey(p, actor), nil, nil); err != nil {
			return nil, errors.Join(err, it.Close())
		}
		recorded = append(recorded, actor)
	}
	return recorded, it.Close()
}

// loadRetired reads every retired record into memory; Open runs it.
func (s *Store) loadRetired() error {
	start := []byte{prefixIncarnation, incarnationRetired}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: upperBound(start)})
	if err != nil {
		return fmt.Errorf("store: read retired actors: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) <= 6 {
			return errors.Join(fmt.Errorf("%w: retired actor record %x", ErrCorrupt, k), it.Close())
		}
		s.retired.add(binary.BigEndian.Uint32(k[2:]), string(k[6:]))
	}
	return it.Close()
}

// RetiredActors returns the actor ids known retired that minted into
// partition p on this node: its own past actors of p.
func (s *Store) RetiredActors(p uint32) []string {
	s.retired.mu.RLock()
	defer s.retired.mu.RUnlock()
	return slices.Clone(s.retired.byPart[p])
}

// IsRetired reports whether the actor id is known retired here: one of
// this node's past actors, or one a peer pruned from a key of this node.
func (s *Store) IsRetired(actor string) bool {
	s.retired.mu.RLock()
	defer s.retired.mu.RUnlock()
	_, ok := s.retired.actors[actor]
	return ok
}

// RetireActors records, synced, that actors of partition p are retired,
// as a peer that pruned them says. Actors already known are skipped.
func (s *Store) RetireActors(p uint32, actors []string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	var fresh []string
	for _, a := range actors {
		if a != "" && !s.IsRetired(a) {
			fresh = append(fresh, a)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, a := range fresh {
		if err := b.Set(retiredKey(p, a), nil, nil); err != nil {
			return fmt.Errorf("store: retire actors: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: retire actors: %w", err)
	}
	for _, a := range fresh {
		s.retired.add(p, a)
	}
	return nil
}
