package bench

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cairnkv/cairn/client"
)

// keyspace numbers the run's keys 0, 1, 2, ... and tracks which exist.
// Inserts take the next number and acknowledge it when they return; reads
// and updates address only keys below the acknowledged watermark, the
// longest prefix of numbers every insert of which has returned (YCSB's
// AcknowledgedCounterGenerator), so they never ask for a key whose insert
// is still in flight.
type keyspace struct {
	next  atomic.Uint64 // the number the next insert takes
	acked atomic.Uint64 // every number below has been acknowledged

	mu    sync.Mutex
	ahead map[uint64]struct{} // acknowledged numbers above the watermark
}

// newKeyspace starts with keys [0, existing) in place.
func newKeyspace(existing uint64) *keyspace {
	ks := &keyspace{ahead: map[uint64]struct{}{}}
	ks.next.Store(existing)
	ks.acked.Store(existing)
	return ks
}

func (ks *keyspace) claim() uint64 { return ks.next.Add(1) - 1 }

// ack marks an insert done, whether it succeeded or not: a failed insert
// must not hold the watermark back forever, and a read of its key then
// counts as not found, which the result shows.
func (ks *keyspace) ack(n uint64) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.ahead[n] = struct{}{}
	w := ks.acked.Load()
	for {
		if _, ok := ks.ahead[w]; !ok {
			break
		}
		delete(ks.ahead, w)
		w++
	}
	ks.acked.Store(w)
}

// count is the number of keys reads and updates may address.
func (ks *keyspace) count() uint64 { return ks.acked.Load() }

// chooser picks existing keys by one distribution; one per worker.
type chooser struct {
	dist      Distribution
	zipf      scrambledZipfian
	latest    skewedLatest
	zipfItems uint64
}

// newChooser returns a template for the workers' choosers: copy it by
// value. records is the key count zipfian draws over (YCSB fixes it at
// the record count too; keys inserted during the run are then addressed
// only by uniform and latest).
func newChooser(dist Distribution, records uint64) chooser {
	c := chooser{dist: dist, zipfItems: records}
	switch dist {
	case Zipfian:
		c.zipf = newScrambledZipfian(records)
	case Latest:
		c.latest = newSkewedLatest(records)
	}
	return c
}

// next returns a key number below n (n > 0).
func (c *chooser) next(r *rand.Rand, n uint64) uint64 {
	switch c.dist {
	case Zipfian:
		return min(c.zipf.Next(r), n-1)
	case Latest:
		return c.latest.Next(r, n-1)
	default:
		return r.Uint64N(n)
	}
}

// keyName is the stored key of number n. The number is hashed first, as
// YCSB does by default, so consecutive inserts do not share a prefix.
func keyName(buf []byte, n uint64) []byte {
	buf = append(buf[:0], "user"...)
	return strconv.AppendUint(buf, fnv64(n), 10)
}

// contexts remembers, per key number, the causal context of the last read
// or write of it, so an update replaces the value it saw instead of adding
// a sibling. Sharded so workers rarely wait for each other.
type contexts struct {
	shards [64]struct {
		mu sync.Mutex
		m  map[uint64]client.Context
	}
}

func newContexts() *contexts {
	c := &contexts{}
	for i := range c.shards {
		c.shards[i].m = map[uint64]client.Context{}
	}
	return c
}

func (c *contexts) get(n uint64) client.Context {
	s := &c.shards[n%uint64(len(c.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[n]
}

func (c *contexts) set(n uint64, ctx client.Context) {
	if len(ctx) == 0 {
		return
	}
	s := &c.shards[n%uint64(len(c.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[n] = ctx
}
