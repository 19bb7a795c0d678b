package store

import (
	"bytes"
	"math/bits"
	"sync"
)

// recordCache keeps the records (the bytes pebble holds) of recently read
// and written objects, so that the read of a read-modify-write, and most
// reads, skip pebble: a point read that finds its key in the memtable still
// walks a skiplist of every recent version of every key, one cache miss per
// node, and under the yardstick's load that walk was the largest cost of a
// replica write. A map lookup replaces it.
//
// It holds records, not decoded objects: a record is immutable once in the
// cache, so every read decodes an object of its own, and no caller can
// change what the next one sees.
//
// The cache is never ahead of or behind pebble for a key a reader can
// reach through it, because every write of an object key updates it:
//
//   - Modify (and ModifyUnsynced) puts the new record under the key's lock
//     right after committing it, or removes the key if the commit failed;
//   - DropPartition holds every key's lock while it deletes the partition
//     and removes the partition's keys;
//   - a Get that read pebble fills the cache only if no writer of the key's
//     stripe started since before its read (the stripe's generation, an odd
//     number while a write is under way), checked under the shard's lock;
//     a writer that starts after the check puts its own record after the
//     fill.
//
// It is bounded in bytes (key, record and an estimate of the bookkeeping),
// split over shards that each evict their least recently used records. A
// key that is written enters at once: every write of a key reads it first
// (a read-modify-write), so the key's next write hits, and the writer has
// the record in hand. A key that is only read enters on its second read in
// a while (a doorkeeper remembers the hashes of recent first reads, as
// TinyLFU's does): on a keyspace far larger than the cache, most keys are
// never read twice before they would be evicted, and caching each of them
// would cost an insertion, an eviction and garbage for nothing. An entry
// evicted to make room is reused for the newcomer.
type recordCache struct {
	shards     []cacheShard
	shardBytes int64
}

// cacheEntryOverhead estimates the bytes an entry costs beyond its key and
// record: the entry itself, its map slot, the slice headers.
const cacheEntryOverhead = 112

// cacheShards is the number of shards: enough that 50 concurrent requests
// rarely queue on one lock.
const cacheShards = 64

type cacheShard struct {
	mu sync.Mutex
	// entries finds an entry by the hash of its key; entries whose keys
	// share a hash are chained through sameHash.
	entries map[uint64]*cacheEntry
	// lru is the sentinel of a ring of the entries, most recently used
	// first.
	lru   cacheEntry
	bytes int64
	// seen is the doorkeeper: the hashes of keys read once and not
	// cached, each in the slot its hash picks, until another overwrites it.
	seen []uint64
	_    [64]byte // keeps neighbouring shards' locks off one cache line
}

type cacheEntry struct {
	hash       uint64
	key, rec   []byte
	sameHash   *cacheEntry
	prev, next *cacheEntry
}

func entrySize(k, rec []byte) int64 { return int64(len(k) + len(rec) + cacheEntryOverhead) }

func (e *cacheEntry) size() int64 { return entrySize(e.key, e.rec) }

// newRecordCache returns a cache of at most maxBytes in the given number of
// shards, or nil (no cache) when maxBytes is not positive. Every method of
// a nil cache does nothing.
func newRecordCache(maxBytes int64, shards int) *recordCache {
	if maxBytes <= 0 {
		return nil
	}
	c := &recordCache{shards: make([]cacheShard, shards), shardBytes: maxBytes / int64(shards)}
	// About as many doorkeeper slots as the shard holds small objects.
	slots := 1 << bits.Len64(uint64(max(c.shardBytes/256, 64)))
	for i := range c.shards {
		sh := &c.shards[i]
		sh.entries = map[uint64]*cacheEntry{}
		sh.lru.prev, sh.lru.next = &sh.lru, &sh.lru
		sh.seen = make([]uint64, slots)
	}
	return c
}

// shard picks the shard from bits of the key's hash that the stripe index
// (its low bits) does not use.
func (c *recordCache) shard(h uint64) *cacheShard {
	return &c.shards[(h>>32)%uint64(len(c.shards))]
}

// get returns the cached record of k. The record must not be modified.
func (c *recordCache) get(h uint64, k []byte) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.find(h, k)
	if e == nil {
		return nil, false
	}
	sh.unlink(e)
	sh.pushFront(e)
	return e.rec, true
}

// put makes a copy of rec the cached record of k, replacing any other. A
// write is admitted without the doorkeeper: the writer holds the record it
// just committed (caching it costs a copy, not a read), and the key's next
// write reads it back, so a write is as good a sign of a next access as a
// second read. The caller holds k's stripe lock and has just committed rec
// to pebble.
func (c *recordCache) put(h uint64, k, rec []byte) {
	if c == nil {
		return
	}
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.store(h, k, rec, c.shardBytes)
}

// fill caches rec, read from pebble after st's generation was gen, if k is
// not cached, the doorkeeper admits it, and no write under st has started
// since (see the type's comment): all checked under the shard's lock.
func (c *recordCache) fill(h uint64, k, rec []byte, st *stripe, gen uint64) {
	if c == nil || gen%2 == 1 {
		return
	}
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.find(h, k) != nil || st.gen.Load() != gen || !sh.admit(h) {
		return
	}
	sh.store(h, k, rec, c.shardBytes)
}

// remove forgets k.
func (c *recordCache) remove(h uint64, k []byte) {
	if c == nil {
		return
	}
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.find(h, k); e != nil {
		sh.drop(e)
	}
}

// removePrefix forgets every key that starts with prefix. It visits every
// entry: it is for DropPartition, not for the request path.
func (c *recordCache) removePrefix(prefix []byte) {
	if c == nil {
		return
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for e := sh.lru.next; e != &sh.lru; {
			next := e.next
			if bytes.HasPrefix(e.key, prefix) {
				sh.drop(e)
			}
			e = next
		}
		sh.mu.Unlock()
	}
}

// admit reports whether a key of hash h that is not cached was accessed
// recently, and remembers this access if not. A hash collision admits a
// key early, which costs a little memory, never correctness.
func (sh *cacheShard) admit(h uint64) bool {
	slot := &sh.seen[(h^h>>29)&uint64(len(sh.seen)-1)]
	if *slot == h {
		*slot = 0
		return true
	}
	*slot = h
	return false
}

func (sh *cacheShard) find(h uint64, k []byte) *cacheEntry {
	for e := sh.entries[h]; e != nil; e = e.sameHash {
		if bytes.Equal(e.key, k) {
			return e
		}
	}
	return nil
}

// store caches a copy of rec under k, evicting from the cold end until the
// shard fits its budget. A record too large to share a shard with others is
// not cached (and any older record of k is forgotten). The old record of k
// is replaced, never overwritten: a reader may be decoding it.
func (sh *cacheShard) store(h uint64, k, rec []byte, budget int64) {
	e := sh.find(h, k)
	if e != nil {
		sh.drop(e)
	}
	size := entrySize(k, rec)
	if size > budget/8 {
		return
	}
	for sh.bytes+size > budget {
		e = sh.lru.prev
		sh.drop(e)
	}
	if e == nil {
		e = &cacheEntry{}
	}
	// A dropped entry's key is read by nobody outside the lock: its
	// buffer is reused. Its record may still be being decoded.
	e.hash, e.key, e.rec = h, append(e.key[:0], k...), bytes.Clone(rec)
	e.sameHash = sh.entries[h]
	sh.entries[h] = e
	sh.pushFront(e)
	sh.bytes += size
}

// drop unlinks e from the shard; the caller may reuse it.
func (sh *cacheShard) drop(e *cacheEntry) {
	sh.unlink(e)
	sh.bytes -= e.size()
	if head := sh.entries[e.hash]; head == e {
		if e.sameHash == nil {
			delete(sh.entries, e.hash)
		} else {
			sh.entries[e.hash] = e.sameHash
		}
	} else {
		for p := head; p != nil; p = p.sameHash {
			if p.sameHash == e {
				p.sameHash = e.sameHash
				break
			}
		}
	}
	e.sameHash = nil
}

func (sh *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (sh *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &sh.lru, sh.lru.next
	sh.lru.next.prev = e
	sh.lru.next = e
}
