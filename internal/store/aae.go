package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cockroachdb/pebble/v2"
)

// What anti-entropy needs from storage, and nothing of anti-entropy itself:
// the store knows no trees. It offers
//
//   - a write hook (Options.OnObjectWrite, OnPartitionDrop) that sees every
//     change to the object keyspace, so trees stay current without
//     rereading anything;
//   - opaque records in the 'a' keyspace, saved by Close at the moment no
//     write can follow (Options.SaveOnClose), read back and deleted by the
//     next run before it accepts writes;
//   - a snapshot cut with respect to the write hook (CutSnapshot), from
//     which a tree can be rebuilt while writes go on;
//   - scans that skip decoding the objects a caller does not want
//     (ScanPartitionFiltered), and the list of partitions holding objects.

// AAERecord is one record of the anti-entropy keyspace. The store does not
// interpret Key or Value.
type AAERecord struct {
	Key, Value []byte
}

// MaxAAEKeyBytes bounds the key of an anti-entropy record.
const MaxAAEKeyBytes = 1 << 10

func aaeKey(k []byte) ([]byte, error) {
	if len(k) == 0 || len(k) > MaxAAEKeyBytes {
		return nil, cairn.InvalidArgument("anti-entropy record key of %d bytes: must be 1 to %d", len(k), MaxAAEKeyBytes)
	}
	return append([]byte{prefixAntiEntropy}, k...), nil
}

var aaeStart = []byte{prefixAntiEntropy}

// AAERecords calls fn for every anti-entropy record, in key order. The
// record's bytes are fn's to keep.
func (s *Store) AAERecords(fn func(r AAERecord) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: aaeStart, UpperBound: upperBound(aaeStart)})
	if err != nil {
		return fmt.Errorf("store: read anti-entropy records: %w", err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: read anti-entropy record %x: %w", it.Key(), err)
		}
		r := AAERecord{Key: append([]byte(nil), it.Key()[1:]...), Value: append([]byte(nil), v...)}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: read anti-entropy records: %w", err)
	}
	return nil
}

// PutAAERecords stores records in one synced batch. A record with a bad key
// is an error that writes nothing.
func (s *Store) PutAAERecords(rs []AAERecord) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.addAAERecords(b, rs); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: write anti-entropy records: %w", err)
	}
	return nil
}

func (s *Store) addAAERecords(b *pebble.Batch, rs []AAERecord) error {
	for _, r := range rs {
		k, err := aaeKey(r.Key)
		if err != nil {
			return err
		}
		if err := b.Set(k, r.Value, nil); err != nil {
			return fmt.Errorf("store: write anti-entropy record %x: %w", r.Key, err)
		}
	}
	return nil
}

// DeleteAAERecords deletes every anti-entropy record, synced before it
// returns. A node calls it once it has read its saved trees and before it
// accepts a write: a tree saved and then outlived by writes must never be
// read again after a crash.
func (s *Store) DeleteAAERecords() error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.db.DeleteRange(aaeStart, upperBound(aaeStart), pebble.Sync); err != nil {
		return fmt.Errorf("store: delete anti-entropy records: %w", err)
	}
	return nil
}

// closeBatch is Close's last write: the records SaveOnClose returns, and
// the deletion of the running marker, in one synced batch. Calls have
// drained, so no write can land between the records and the marker.
func (s *Store) closeBatch() error {
	b := s.db.NewBatch()
	defer b.Close()
	var errs []error
	if save := s.opts.SaveOnClose; save != nil {
		rs, err := save()
		if err == nil {
			err = s.addAAERecords(b, rs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("store: save anti-entropy records: %w", err))
			b.Reset()
		}
	}
	if err := b.Delete(runningKey, nil); err != nil {
		return errors.Join(append(errs, err)...)
	}
	return errors.Join(append(errs, b.Commit(pebble.Sync))...)
}

// ObjectPartitions lists the partitions holding at least one object, in
// ascending order. It seeks once per partition found, not once per object.
func (s *Store) ObjectPartitions() ([]uint32, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	start := []byte{prefixObject}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: upperBound(start)})
	if err != nil {
		return nil, fmt.Errorf("store: list partitions: %w", err)
	}
	defer it.Close()
	var out []uint32
	for valid := it.First(); valid; {
		k := it.Key()
		if len(k) < partitionPrefixLen {
			return nil, fmt.Errorf("%w: object key %x: too short", ErrCorrupt, k)
		}
		p := binary.BigEndian.Uint32(k[1:])
		out = append(out, p)
		next := upperBound(partitionPrefix(p))
		if next == nil {
			break
		}
		valid = it.SeekGE(next)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store: list partitions: %w", err)
	}
	return out, nil
}

// ScanPartitionFiltered is ScanPartition for the objects whose (bucket,
// key) keep accepts: the others are skipped without decoding. keep must not
// retain key.
func (s *Store) ScanPartitionFiltered(p uint32, keep func(bucket string, key []byte) bool, fn func(bucket string, key []byte, obj dvv.Object) (bool, error)) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	it, err := s.db.NewIter(partitionBounds(p))
	if err != nil {
		return fmt.Errorf("store: scan partition %d: %w", p, err)
	}
	defer it.Close()
	return s.scanIter(it, p, keep, func(bucket string, key []byte, obj dvv.Object, _ int) (bool, error) {
		return fn(bucket, key, obj)
	})
}

func partitionBounds(p uint32) *pebble.IterOptions {
	start := partitionPrefix(p)
	return &pebble.IterOptions{LowerBound: start, UpperBound: upperBound(start)}
}

// scanIter walks a partition's iterator, decoding the objects keep accepts
// (all when keep is nil). size is the record's bytes, key and value.
func (s *Store) scanIter(it *pebble.Iterator, p uint32, keep func(string, []byte) bool, fn func(bucket string, key []byte, obj dvv.Object, size int) (bool, error)) error {
	for valid := it.First(); valid; valid = it.Next() {
		if s.closing.Load() {
			return ErrClosed
		}
		_, bucket, key, err := decodeObjectKey(it.Key())
		if err != nil {
			return fmt.Errorf("store: scan partition %d: %w", p, err)
		}
		if keep != nil && !keep(bucket, key) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: scan partition %d at %x: %w", p, it.Key(), err)
		}
		obj, err := decodeObject(v)
		if err != nil {
			return fmt.Errorf("store: scan partition %d at %x: %w", p, it.Key(), err)
		}
		more, err := fn(bucket, append([]byte(nil), key...), obj, len(it.Key())+len(v))
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: scan partition %d: %w", p, err)
	}
	return nil
}

// Snapshot is a read-only view of every object as of one moment, for
// rebuilding state derived from them while writes go on. It holds the
// Store open: Close waits until the snapshot is closed, and scans of it
// stop with ErrClosed once Close has begun. It is not safe for concurrent
// use.
type Snapshot struct {
	s    *Store
	snap *pebble.Snapshot
}

// CutSnapshot takes a Snapshot with every key's lock held, and calls cut
// while still holding them. Object writes run their OnObjectWrite under
// the same locks, so every write is either in the snapshot, or made after
// cut returned with its OnObjectWrite after cut too: a tree rebuilt from
// the snapshot and updated by the hook from cut on counts each write
// exactly once. Writes wait for the cut: the time to take every lock (any
// write holding one commits first; its fsync runs after the lock is
// released) and to run cut, which must be quick and must not call the
// Store.
func (s *Store) CutSnapshot(cut func()) (*Snapshot, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	s.lockAll()
	snap := s.db.NewSnapshot()
	cut()
	s.unlockAll()
	return &Snapshot{s: s, snap: snap}, nil
}

// ScanPartition calls fn for every object of partition p in the snapshot,
// in the order of Store.ScanPartition, with the record's size in bytes
// (key and value) for pacing. It stops when fn returns false or an error
// (returned as is), and with ErrClosed once the Store's Close has begun.
func (sn *Snapshot) ScanPartition(p uint32, fn func(bucket string, key []byte, obj dvv.Object, size int) (bool, error)) error {
	if sn.snap == nil {
		return ErrClosed
	}
	it, err := sn.snap.NewIter(partitionBounds(p))
	if err != nil {
		return fmt.Errorf("store: scan partition %d: %w", p, err)
	}
	defer it.Close()
	return sn.s.scanIter(it, p, nil, fn)
}

// Close releases the snapshot. Closing twice does nothing.
func (sn *Snapshot) Close() error {
	if sn.snap == nil {
		return nil
	}
	err := sn.snap.Close()
	sn.snap = nil
	sn.s.leave()
	return err
}
