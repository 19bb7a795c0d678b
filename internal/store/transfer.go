package store

import (
	"fmt"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cockroachdb/pebble/v2"
)

// Ownership transfer streams a partition from a snapshot in batches and
// resumes after a crash from the last (bucket, key) the receiver
// acknowledged; these are the reads it needs.

// ScanPartitionAfter is ScanPartition from just after (bucket, key): the
// objects that follow it in scan order. An empty bucket and nil key start
// at the partition's first object.
func (sn *Snapshot) ScanPartitionAfter(p uint32, bucket string, key []byte, fn func(bucket string, key []byte, obj dvv.Object, size int) (bool, error)) error {
	if sn.snap == nil {
		return ErrClosed
	}
	opts := partitionBounds(p)
	if bucket != "" || len(key) > 0 {
		k, err := objectKey(p, bucket, key)
		if err != nil {
			return err
		}
		// The least key above k: k followed by a zero byte.
		opts.LowerBound = append(k, 0)
	}
	it, err := sn.snap.NewIter(opts)
	if err != nil {
		return fmt.Errorf("store: scan partition %d: %w", p, err)
	}
	defer it.Close()
	return sn.s.scanIter(it, p, nil, fn)
}

// PartitionSize counts the objects of partition p in the snapshot and the
// bytes of their records (key and value), without decoding them: the
// total a transfer reports its progress against.
func (sn *Snapshot) PartitionSize(p uint32) (keys int64, bytes int64, err error) {
	if sn.snap == nil {
		return 0, 0, ErrClosed
	}
	it, err := sn.snap.NewIter(partitionBounds(p))
	if err != nil {
		return 0, 0, fmt.Errorf("store: size partition %d: %w", p, err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		if sn.s.closing.Load() {
			return 0, 0, ErrClosed
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, 0, fmt.Errorf("store: size partition %d: %w", p, err)
		}
		keys++
		bytes += int64(len(it.Key()) + len(v))
	}
	if err := it.Error(); err != nil {
		return 0, 0, fmt.Errorf("store: size partition %d: %w", p, err)
	}
	return keys, bytes, nil
}

// DeleteMeta removes the metadata value under name, if any, fsynced
// before it returns.
func (s *Store) DeleteMeta(name string) error {
	k, err := metaKey(name)
	if err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.db.Delete(k, pebble.Sync); err != nil {
		return fmt.Errorf("store: delete metadata %q: %w", name, err)
	}
	return nil
}
