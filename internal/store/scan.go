package store

import (
	"fmt"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cockroachdb/pebble/v2"
)

// ScanPartition calls fn for every object of partition p, from one
// consistent view taken when the scan starts: writes made during the scan
// are not seen. Objects come in key order, which groups them by bucket
// (buckets ordered by their length prefix, then bytes) and orders keys
// bytewise within a bucket. fn may keep key, and may call the Store (the scan
// holds no lock); it should not dawdle, since the view pins memtables and
// files until the scan ends.
//
// The scan stops when fn returns false or an error (returned as is), and with
// ErrClosed when Close begins.
func (s *Store) ScanPartition(p uint32, fn func(bucket string, key []byte, obj dvv.Object) (bool, error)) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()

	start := partitionPrefix(p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: upperBound(start)})
	if err != nil {
		return fmt.Errorf("store: scan partition %d: %w", p, err)
	}
	defer it.Close()
	return s.scanIter(it, p, nil, func(bucket string, key []byte, obj dvv.Object, _ int) (bool, error) {
		return fn(bucket, key, obj)
	})
}
