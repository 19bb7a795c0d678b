package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cespare/xxhash/v2"
)

// BatchWrite is one write of ModifyBatch: fn, as Modify's, on the object
// of (P, Bucket, Key).
type BatchWrite struct {
	P      uint32
	Bucket string
	Key    []byte
	Fn     func(cur dvv.Object, found bool) (dvv.Object, bool, error)
}

// ModifyBatch applies writes as Modify applies one, and commits every
// write that changes its object in one pebble batch: one pass through the
// commit pipeline and, when synced, one fsync for all of them. It is how
// a replica applies the writes a peer sent it together.
//
// Each write's fn sees its key's current object under the key's lock; a
// key named twice sees the earlier write's result, as two Modify calls in
// that order would. errs[i] is writes[i]'s outcome: fn's error, which
// leaves the other writes alone, or the commit's (or the fsync's), which
// every write in the commit shares. The locks of every key are held, in
// stripe order (as lockAll takes them), from the first read to the
// commit, and released before the fsync (commit.go).
func (s *Store) ModifyBatch(writes []BatchWrite, sync bool) []error {
	errs := make([]error, len(writes))
	if err := s.enter(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer s.leave()
	sync = sync || !s.opts.NoSyncWrites
	keys := make([][]byte, len(writes))
	hashes := make([]uint64, len(writes))
	stripes := make([]int, 0, len(writes))
	mask := uint64(len(s.stripes) - 1)
	for i, w := range writes {
		k, err := objectKey(w.P, w.Bucket, w.Key)
		if err != nil {
			errs[i] = err
			continue
		}
		keys[i], hashes[i] = k, xxhash.Sum64(k)
		stripes = append(stripes, int(hashes[i]&mask))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.stripes[i].Lock()
	}
	pending, written := s.modifyBatchLocked(writes, keys, hashes, stripes, errs, sync)
	for _, i := range stripes {
		s.stripes[i].Unlock()
	}
	if err := pending.wait(); err != nil {
		for _, i := range written {
			errs[i] = fmt.Errorf("store: sync write %x: %w", keys[i], err)
		}
	}
	return errs
}

// modifyBatchLocked is ModifyBatch's work under the locks: it returns the
// commit's fsync to wait for and the writes in the commit.
func (s *Store) modifyBatchLocked(writes []BatchWrite, keys [][]byte, hashes []uint64, stripes []int, errs []error, sync bool) (pendingSync, []int) {
	type staged struct {
		cur, next dvv.Object
		found     bool
		rec       []byte
	}
	out := make([]staged, len(writes))
	var written []int
	b := s.db.NewBatch()
	for i, w := range writes {
		if errs[i] != nil {
			continue
		}
		k := keys[i]
		// The latest write of the same key earlier in the batch, if any,
		// is the current object.
		prev := -1
		for j := len(written) - 1; j >= 0; j-- {
			if x := written[j]; hashes[x] == hashes[i] && bytes.Equal(keys[x], k) {
				prev = x
				break
			}
		}
		var cur dvv.Object
		found := true
		if prev >= 0 {
			cur = out[prev].next
		} else {
			var err error
			cur, found, err = s.readObject(k, hashes[i], nil, 0)
			if err != nil {
				errs[i] = err
				continue
			}
		}
		next, write, err := w.Fn(cur, found)
		if err != nil {
			errs[i] = err
			continue
		}
		if !write {
			continue
		}
		rec, err := encodeObject(next)
		if err == nil {
			err = b.Set(k, rec, nil)
		}
		if err != nil {
			errs[i] = fmt.Errorf("store: write %x: %w", k, err)
			continue
		}
		out[i] = staged{cur: cur, next: next, found: found, rec: rec}
		written = append(written, i)
	}
	if len(written) == 0 {
		_ = b.Close()
		return pendingSync{}, nil
	}
	for _, i := range stripes {
		s.stripes[i].beginWrite()
	}
	pending, err := s.commitBatch(b, sync)
	if err != nil {
		for _, i := range written {
			// The write may or may not be visible: forget the key.
			s.cache.remove(hashes[i], keys[i])
			errs[i] = fmt.Errorf("store: write %x: %w", keys[i], errors.Join(err))
		}
		for _, i := range stripes {
			s.stripes[i].endWrite()
		}
		return pendingSync{}, nil
	}
	for _, i := range written {
		s.cache.put(hashes[i], keys[i], out[i].rec)
	}
	for _, i := range stripes {
		s.stripes[i].endWrite()
	}
	s.counters.writes.Add(uint64(len(written)))
	if sync {
		s.counters.syncedWrites.Add(uint64(len(written)))
	}
	if hook := s.opts.OnObjectWrite; hook != nil {
		for _, i := range written {
			w := writes[i]
			hook(w.P, w.Bucket, w.Key, out[i].cur, out[i].found, out[i].next)
		}
	}
	return pending, written
}
