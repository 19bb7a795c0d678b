package store

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestRecordCacheAgainstModel drives one shard of the cache with random
// operations, keys that share hashes, and a budget of a few entries, and
// compares it with a map: a record, once cached, is the last one stored for
// its key until it is removed or evicted; the shard never exceeds its
// budget; and a record handed out is never changed afterwards.
func TestRecordCacheAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const budget = 8 * (cacheEntryOverhead + 50)
		c := newRecordCache(budget, 1)
		model := map[string][]byte{}
		type handed struct{ rec, copy []byte }
		var handedOut []handed
		// Four hashes for eight keys: every hash is shared by two keys.
		hashOf := func(k string) uint64 { return uint64(k[len(k)-1] % 4) }
		keyGen := rapid.SampledFrom([]string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"})
		for range rapid.IntRange(1, 200).Draw(t, "ops") {
			k := keyGen.Draw(t, "key")
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				rec := rapid.SliceOfN(rapid.Byte(), 1, 40).Draw(t, "rec")
				c.put(hashOf(k), []byte(k), rec)
				model[k] = append([]byte(nil), rec...)
				rec[0]++ // the cache kept a copy
			case 1:
				c.remove(hashOf(k), []byte(k))
				delete(model, k)
			case 2:
				var st stripe
				rec := rapid.SliceOfN(rapid.Byte(), 1, 40).Draw(t, "rec")
				_, cached := c.get(hashOf(k), []byte(k))
				c.fill(hashOf(k), []byte(k), rec, &st, 0)
				if !cached {
					model[k] = append([]byte(nil), rec...)
				}
			case 3:
				got, ok := c.get(hashOf(k), []byte(k))
				if ok {
					want, inModel := model[k]
					require.True(t, inModel, "%s cached after its removal", k)
					require.Equal(t, want, got, "%s", k)
					handedOut = append(handedOut, handed{got, append([]byte(nil), got...)})
				}
			}
			// Evicted keys leave the model: the cache may forget, never
			// invent.
			sh := c.shard(0)
			for mk := range model {
				if sh.find(hashOf(mk), []byte(mk)) == nil {
					delete(model, mk)
				}
			}
			require.LessOrEqual(t, sh.bytes, int64(budget))
			var sum int64
			n := 0
			for e := sh.lru.next; e != &sh.lru; e = e.next {
				sum += e.size()
				n++
			}
			require.Equal(t, sum, sh.bytes)
			chained := 0
			for _, head := range sh.entries {
				for e := head; e != nil; e = e.sameHash {
					chained++
				}
			}
			require.Equal(t, n, chained, "every entry is both in the ring and in the map")
			require.Equal(t, len(model), n)
		}
		for _, h := range handedOut {
			require.Equal(t, h.copy, h.rec, "a record handed out was changed")
		}
	})
}

// TestRecordCacheAdmission checks who enters: a written key at once (its
// next write reads it), a key only read on its second read (the
// doorkeeper).
func TestRecordCacheAdmission(t *testing.T) {
	c := newRecordCache(1<<20, 1)
	var st stripe
	k := []byte("k")
	c.put(1, k, []byte("v1"))
	got, ok := c.get(1, k)
	require.True(t, ok, "a write enters at once")
	require.Equal(t, "v1", string(got))
	c.put(1, k, []byte("v2"))
	got, ok = c.get(1, k)
	require.True(t, ok)
	require.Equal(t, "v2", string(got))

	other := []byte("other")
	c.fill(2, other, []byte("r"), &st, st.gen.Load())
	_, ok = c.get(2, other)
	require.False(t, ok, "first read")
	c.fill(2, other, []byte("r"), &st, st.gen.Load())
	_, ok = c.get(2, other)
	require.True(t, ok, "second read")
}

// TestRecordCacheFillRules checks when a record read from pebble may be
// cached, with the doorkeeper passed.
func TestRecordCacheFillRules(t *testing.T) {
	c := newRecordCache(1<<20, cacheShards)
	k := []byte("k")
	var st stripe
	write := func(rec string) {
		st.beginWrite()
		c.put(1, k, []byte(rec))
		st.endWrite()
	}

	gen := st.gen.Load()
	st.beginWrite()
	c.fill(1, k, []byte("read during a write"), &st, st.gen.Load())
	_, ok := c.get(1, k)
	require.False(t, ok, "a read that began during a write is not cached")
	st.endWrite()

	c.fill(1, k, []byte("read before a write"), &st, gen)
	_, ok = c.get(1, k)
	require.False(t, ok, "a read that a write followed is not cached")

	gen = st.gen.Load()
	write("written")
	c.fill(1, k, []byte("older"), &st, gen)
	got, ok := c.get(1, k)
	require.True(t, ok)
	require.Equal(t, "written", string(got), "a read that a write followed replaces nothing")

	gen = st.gen.Load()
	c.fill(1, k, []byte("read"), &st, gen)
	got, ok = c.get(1, k)
	require.True(t, ok)
	require.Equal(t, "written", string(got), "a fill never replaces a cached record")

	c.remove(1, k)
	c.shard(1).admit(1)
	c.fill(1, k, []byte("read"), &st, gen)
	got, ok = c.get(1, k)
	require.True(t, ok)
	require.Equal(t, "read", string(got))

	big := make([]byte, c.shardBytes)
	write(string(big))
	_, ok = c.get(1, k)
	require.False(t, ok, "a record too large for the cache is not kept, and replaces the older one")

	var nilCache *recordCache
	nilCache.put(1, k, []byte("v"))
	_, ok = nilCache.get(1, k)
	require.False(t, ok)
}

func TestRecordCacheRemovePrefix(t *testing.T) {
	c := newRecordCache(1<<20, cacheShards)
	for p := range uint32(3) {
		for i := range 50 {
			k, err := objectKey(p, "b", fmt.Appendf(nil, "k%d", i))
			require.NoError(t, err)
			c.put(xxhash.Sum64(k), k, []byte{1})
		}
	}
	c.removePrefix(partitionPrefix(1))
	for p := range uint32(3) {
		for i := range 50 {
			k, _ := objectKey(p, "b", fmt.Appendf(nil, "k%d", i))
			_, ok := c.get(xxhash.Sum64(k), k)
			require.Equal(t, p != 1, ok, "partition %d key %d", p, i)
		}
	}
}

// counterValue reads the counter a counterObject holds.
func counterValue(t testing.TB, obj dvv.Object, found bool) uint64 {
	if !found {
		return 0
	}
	require.Len(t, obj.Siblings, 1)
	return binary.BigEndian.Uint64(obj.Siblings[0].Value)
}

// increment replaces a counter object by one holding the next number.
func increment(t testing.TB) func(dvv.Object, bool) (dvv.Object, bool, error) {
	return func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		n := counterValue(t, cur, found)
		return mustUpdate(cur.Update(cur.VV, "n1.test", binary.BigEndian.AppendUint64(nil, n+1), false, 1)), true, nil
	}
}

// rawGet reads k from pebble, past the cache.
func rawGet(t testing.TB, s *Store, p uint32, key []byte) (dvv.Object, bool) {
	k, err := objectKey(p, "b", key)
	require.NoError(t, err)
	v, closer, err := s.db.Get(k)
	if err == pebble.ErrNotFound {
		return dvv.Object{}, false
	}
	require.NoError(t, err)
	defer closer.Close()
	obj, err := decodeObject(v)
	require.NoError(t, err)
	return obj, true
}

// smallCache gives s a cache of one shard with room for about n objects
// of the tests, so that it evicts all the time.
func smallCache(s *Store, n int) {
	s.cache = newRecordCache(int64(8*(cacheEntryOverhead+64)), 1)
	s.cache.shardBytes = int64(n * (cacheEntryOverhead + 64))
}

// TestCacheKeepsUpWithConcurrentWriters has writers increment counters
// (read-modify-write: a stale cached object would lose an increment) while
// readers check that no counter ever goes backwards (a stale fill would
// make one), with a cache small enough to evict all the time and few
// stripes, so that fills race writes of the same stripe. At the end every
// counter must equal the number of increments, through the cache and in
// pebble.
func TestCacheKeepsUpWithConcurrentWriters(t *testing.T) {
	o := testOptions(t.TempDir())
	o.LockStripes = 8
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	smallCache(s, 8)

	const keys, writers, readers, perWriter = 40, 4, 4, 300
	key := func(i int) []byte { return fmt.Appendf(nil, "k%d", i) }
	var done atomic.Bool
	var wg sync.WaitGroup
	counts := make([]atomic.Uint64, keys)
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range perWriter {
				i := r.IntN(keys)
				// Every third write unsynced, as handoff writes.
				var err error
				if r.IntN(3) == 0 {
					_, err = s.ModifyUnsynced(1, "b", key(i), increment(t))
				} else {
					_, err = s.Modify(1, "b", key(i), true, increment(t))
				}
				if err != nil {
					errs <- err
					return
				}
				counts[i].Add(1)
			}
		})
	}
	var readersWG sync.WaitGroup
	for rd := range readers {
		readersWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			seen := make([]uint64, keys)
			for !done.Load() {
				i := r.IntN(keys)
				obj, found, err := s.Get(1, "b", key(i))
				if err != nil {
					errs <- err
					return
				}
				n := counterValue(t, obj, found)
				if n < seen[i] {
					errs <- fmt.Errorf("key %d read %d after %d", i, n, seen[i])
					return
				}
				seen[i] = n
			}
		})
	}
	wg.Wait()
	done.Store(true)
	readersWG.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range keys {
		obj, found, err := s.Get(1, "b", key(i))
		require.NoError(t, err)
		require.Equal(t, counts[i].Load(), counterValue(t, obj, found), "key %d through the store", i)
		raw, found := rawGet(t, s, 1, key(i))
		require.Equal(t, counts[i].Load(), counterValue(t, raw, found), "key %d in pebble", i)
	}
}

// TestCacheForgetsADroppedPartition drops a partition while readers fill
// the cache from it: afterwards no key of it may read as present.
func TestCacheForgetsADroppedPartition(t *testing.T) {
	o := testOptions(t.TempDir())
	o.LockStripes = 8
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	smallCache(s, 16)
	const keys = 30
	key := func(i int) []byte { return fmt.Appendf(nil, "k%d", i) }
	for round := range 10 {
		for i := range keys {
			_, err := s.Modify(2, "b", key(i), false, increment(t))
			require.NoError(t, err)
		}
		// Readers start with the cache empty of p so that they fill it.
		s.cache.removePrefix(partitionPrefix(2))
		var stop atomic.Bool
		var wg sync.WaitGroup
		for rd := range 3 {
			wg.Go(func() {
				for i := rd; !stop.Load(); i++ {
					_, _, err := s.Get(2, "b", key(i%keys))
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		require.NoError(t, s.DropPartition(2))
		stop.Store(true)
		wg.Wait()
		for i := range keys {
			_, found, err := s.Get(2, "b", key(i))
			require.NoError(t, err)
			require.False(t, found, "round %d: key %d read from the cache after the drop", round, i)
		}
	}
}

// TestCacheServesRepeatedReads checks that the cache is used: a key enters
// when it is written or on its second read, and is read from it from then
// on.
func TestCacheServesRepeatedReads(t *testing.T) {
	s := openTest(t)
	put(t, s, 1, "b", []byte("written"), "v")
	k, _ := objectKey(1, "b", []byte("other"))
	rec, err := encodeObject(mustUpdate(dvv.Object{}.Update(nil, "n1.test", []byte("w"), false, 1)))
	require.NoError(t, err)
	require.NoError(t, s.db.Set(k, rec, pebble.Sync)) // behind the cache's back
	for range 4 {
		for _, key := range []string{"written", "other"} {
			_, found, err := s.Get(1, "b", []byte(key))
			require.NoError(t, err)
			require.True(t, found)
		}
	}
	st := s.Stats()
	// Misses: the write's read of its new key (the write then enters it)
	// and the first two reads of "other" (written behind the cache's back:
	// it enters on its second read).
	require.Equal(t, uint64(3), st.ObjectCacheMisses)
	require.Equal(t, uint64(6), st.ObjectCacheHits)
}
