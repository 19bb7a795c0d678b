package store

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// A synced write is committed in two steps, so that a key's lock is not
// held across the fsync:
//
//  1. commit, under the key's lock: the write enters the WAL and becomes
//     visible. The WAL is written in commit order, so the writes of one key
//     reach it in the order their lock let them through.
//  2. pendingSync.wait, after the lock is released: it returns once the WAL
//     is fsynced up to the write. Only then may the write be acknowledged.
//
// A later writer of the same key may read an object whose fsync has not
// completed yet, and build on it. That costs nothing in durability: its own
// write is later in the WAL, so when its fsync returns the earlier write is
// on disk too; if the machine dies first, both are gone and neither was
// acknowledged. (Readers could always see a write before its fsync: pebble
// publishes first. doc.go, "Incarnations", says why no dot is minted twice
// because of it.)
//
// Holding the lock across the fsync, as a plain synced Set does, makes the
// writers of one key pay one fsync each, one after another: a hot key
// capped the writes per fsync that group commit gets
// (BenchmarkModifyParallel/sync-zipf: 3.5 writes per fsync, 21 now).
//
// pebble documents ApplyNoSyncWait as experimental (CockroachDB commits its
// raft log with it). What this package relies on is tested here:
// TestSyncedWriteWaitsForItsFsyncNotForTheLock holds fsyncs back, and the
// crash test's "shared" mode kills writers of shared keys mid-run.

// pendingSync is a committed write waiting for its fsync; the zero value
// waits for nothing (the write was not synced).
type pendingSync struct{ b *pebble.Batch }

// commit writes rec under k and makes it visible. When sync is set the WAL
// fsync is still running when commit returns: the caller must wait on the
// result before acknowledging, and should release its locks first.
func (s *Store) commit(k, rec []byte, sync bool) (pendingSync, error) {
	b := s.db.NewBatch()
	if err := b.Set(k, rec, nil); err != nil {
		return pendingSync{}, errors.Join(err, b.Close())
	}
	return s.commitBatch(b, sync)
}

// commitBatch is commit for a batch the caller filled; it owns b from then
// on.
func (s *Store) commitBatch(b *pebble.Batch, sync bool) (pendingSync, error) {
	if !sync {
		if err := b.Commit(pebble.NoSync); err != nil {
			// As pebble's own Set: a batch that failed is not reused.
			return pendingSync{}, err
		}
		return pendingSync{}, b.Close()
	}
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		// The batch may be queued for an fsync that will never be waited
		// for: it is left to the collector, not closed.
		return pendingSync{}, err
	}
	return pendingSync{b: b}, nil
}

// wait returns once the write is durable, or with the error that kept it
// from becoming so (it was visible all the same: see the top of this file).
func (p pendingSync) wait() error {
	if p.b == nil {
		return nil
	}
	if err := p.b.SyncWait(); err != nil {
		return err
	}
	return p.b.Close()
}
