package store

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Stats is a snapshot of the store's size and activity. Counters start at
// zero when the Store opens.
type Stats struct {
	// DiskBytes is the space pebble's files take on disk (tables, WAL,
	// manifest), live and awaiting deletion.
	DiskBytes int64
	// ObjectBytes is the space the object keyspace's tables take on disk
	// (an estimate: tables that straddle its bounds count in proportion),
	// the part of DiskBytes that deletes and reaping give back.
	ObjectBytes int64
	// MemTableBytes is memory held by memtables not yet flushed.
	MemTableBytes int64
	// WALBytes is the live data in the write-ahead log.
	WALBytes int64
	// ReadAmp is how many tables or memtables a read may consult in the
	// worst case; it grows when compactions fall behind.
	ReadAmp int
	// CompactionDebtBytes estimates how much must be compacted for the LSM to
	// settle.
	CompactionDebtBytes int64
	// Writes counts objects written by Modify; SyncedWrites those among them
	// fsynced before returning.
	Writes, SyncedWrites uint64
	// ObjectCacheHits and ObjectCacheMisses count the reads of objects
	// (Get, and the read of every write) that the object cache answered,
	// and those that went to pebble.
	ObjectCacheHits, ObjectCacheMisses uint64
	// WALSyncs counts fsyncs of the write-ahead log. SyncedWrites/WALSyncs
	// above one shows group commit at work.
	WALSyncs uint64
	// WriteStalls counts times pebble stopped writes to let flushes or
	// compactions catch up.
	WriteStalls uint64
	// BackgroundErrors counts failed flushes and compactions (pebble retries
	// them; a steady rise means the disk is failing).
	BackgroundErrors uint64
	// Reaped counts tombstones removed by Reap.
	Reaped uint64
	// UncleanStart is set when the previous Store on this directory did not
	// Close, so every actor id was retired at Open.
	UncleanStart bool
}

type counters struct {
	writes, syncedWrites, walSyncs, writeStalls, backgroundErrors atomic.Uint64
	cacheHits, cacheMisses                                        atomic.Uint64
	reaped                                                        atomic.Uint64
}

func (c *counters) eventListener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(error) { c.backgroundErrors.Add(1) },
		WriteStallBegin: func(pebble.WriteStallBeginInfo) { c.writeStalls.Add(1) },
	}
}

// Stats returns the current figures. It is cheap enough for every metrics
// scrape. After Close only the counters are filled in.
func (s *Store) Stats() Stats {
	st := Stats{
		Writes:            s.counters.writes.Load(),
		SyncedWrites:      s.counters.syncedWrites.Load(),
		ObjectCacheHits:   s.counters.cacheHits.Load(),
		ObjectCacheMisses: s.counters.cacheMisses.Load(),
		WALSyncs:          s.counters.walSyncs.Load(),
		Reaped:            s.counters.reaped.Load(),
		WriteStalls:       s.counters.writeStalls.Load(),
		BackgroundErrors:  s.counters.backgroundErrors.Load(),
		UncleanStart:      s.uncleanStart,
	}
	if s.enter() != nil {
		return st
	}
	defer s.leave()
	m := s.db.Metrics()
	st.DiskBytes = int64(m.DiskSpaceUsage())
	if b, err := s.db.EstimateDiskUsage([]byte{prefixObject}, upperBound([]byte{prefixObject})); err == nil {
		st.ObjectBytes = int64(b)
	}
	st.MemTableBytes = int64(m.MemTable.Size)
	st.WALBytes = int64(m.WAL.Size)
	st.ReadAmp = m.ReadAmp()
	st.CompactionDebtBytes = int64(m.Compact.EstimatedDebt)
	return st
}
