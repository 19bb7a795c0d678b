package store

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
)

// BenchmarkLargeKeyspace reads and writes 1,000,000 keys uniformly, with
// and without the object cache. The cache (4 MiB, filled before the
// timing starts) holds about 1.5% of them, as the default 32 MiB would of
// 8,000,000 keys: nearly every request misses it and pays for its upkeep.
func BenchmarkLargeKeyspace(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	keys := benchKeySet("key", n)
	loadDirect(b, dir, keys)
	for _, cache := range []struct {
		name  string
		bytes int64
	}{{"cache", 4 << 20}, {"nocache", -1}} {
		open := func(b *testing.B) *Store {
			o := DefaultOptions(dir, "n1")
			o.ObjectCacheBytes = cache.bytes
			s, err := Open(o)
			if err != nil {
				b.Fatal(err)
			}
			// Fill the cache: 50,000 reads of 1,000,000 keys leave about
			// 49,000 distinct ones, several times what it holds.
			r := rand.New(rand.NewPCG(3, 4))
			for range 50000 {
				if _, _, err := s.Get(1, "b", keys[r.IntN(n)]); err != nil {
					b.Fatal(err)
				}
			}
			b.Cleanup(func() {
				if err := s.Close(); err != nil {
					b.Error(err)
				}
			})
			return s
		}
		b.Run("get/"+cache.name, func(b *testing.B) {
			s := open(b)
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			cpu := measureCPU(b)
			for b.Loop() {
				if _, found, err := s.Get(1, "b", keys[r.IntN(n)]); err != nil || !found {
					b.Fatal(found, err)
				}
			}
			cpu()
		})
		b.Run("modify-sync/"+cache.name, func(b *testing.B) {
			s := open(b)
			var seed atomic.Uint64
			b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := measureCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(seed.Add(1), 0))
				for pb.Next() {
					if _, err := s.Modify(1, "b", keys[r.IntN(n)], true, overwrite); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu()
		})
	}
}

// loadDirect stores one small object under every key with pebble batches,
// bypassing Modify to keep the set-up short, and compacts them.
func loadDirect(b *testing.B, dir string, keys [][]byte) {
	b.Helper()
	s, err := Open(DefaultOptions(dir, "n1"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}()
	obj, _, err := overwrite(dvv.Object{}, false)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := encodeObject(obj)
	if err != nil {
		b.Fatal(err)
	}
	batch := s.db.NewBatch()
	for i, key := range keys {
		k, err := objectKey(1, "b", key)
		if err != nil {
			b.Fatal(err)
		}
		if err := batch.Set(k, rec, nil); err != nil {
			b.Fatal(err)
		}
		if i%10000 == 9999 || i == len(keys)-1 {
			if err := batch.Commit(nil); err != nil {
				b.Fatal(err)
			}
			batch = s.db.NewBatch()
		}
	}
	if err := batch.Close(); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Compact(context.Background(), []byte{prefixObject}, []byte{prefixObject + 1}, false); err != nil {
		b.Fatal(err)
	}
}
