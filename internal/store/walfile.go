package store

import (
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walCategory is the write category pebble gives the WAL files it creates.
const walCategory vfs.DiskWriteCategory = "pebble-wal"

// walFS wraps the filesystem pebble writes through to reach the WAL files
// it creates; every other file is pebble's own. It counts the WAL's
// fsyncs, the one figure that shows whether concurrent synced writes
// share them (pebble reports fsync latency only as a Prometheus
// histogram, which this package must not depend on), and on Linux it
// writes and syncs them with direct system calls (walfile_linux.go).
type walFS struct {
	vfs.FS
	syncs      *atomic.Uint64
	beforeSync func() // Options.beforeWALSync
	pace       syncPace
}

func newWALFS(fs vfs.FS, syncs *atomic.Uint64, beforeSync func()) *walFS {
	return &walFS{FS: fs, syncs: syncs, beforeSync: beforeSync, pace: syncPace{slow: slowWALSync}}
}

func (fs *walFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.wrap(f, category), err
}

func (fs *walFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(f, category), err
}

// Unwrap exposes the wrapped filesystem, as pebble's own wrappers do.
func (fs *walFS) Unwrap() vfs.FS { return fs.FS }

func (fs *walFS) wrap(f vfs.File, category vfs.DiskWriteCategory) vfs.File {
	if f == nil || category != walCategory {
		return f
	}
	return &walFile{File: f, fs: fs, direct: directCalls(f)}
}

// walFile is one WAL file. Pebble's log writer is its only writer: one
// goroutine appends a group of records and then syncs them, in turn.
type walFile struct {
	vfs.File
	fs     *walFS
	direct *directFile // nil where direct calls do not apply
}

func (f *walFile) Sync() error {
	f.counted()
	return f.File.Sync()
}

func (f *walFile) SyncData() error {
	f.counted()
	start := time.Now()
	var err error
	if f.direct != nil && f.fs.pace.quick() {
		err = f.direct.syncData()
	} else {
		err = f.File.SyncData()
	}
	f.fs.pace.observe(time.Since(start))
	return err
}

func (f *walFile) Write(p []byte) (int, error) {
	if f.direct == nil || !f.fs.pace.quick() {
		return f.File.Write(p)
	}
	return f.direct.write(p)
}

func (f *walFile) counted() {
	f.fs.syncs.Add(1)
	if f.fs.beforeSync != nil {
		f.fs.beforeSync()
	}
}

// syncPace decides whether the WAL's writes and syncs may be direct
// system calls. A direct call keeps its goroutine's processor for as long
// as the disk takes, and a stop-the-world phase of the garbage collector
// waits for it. While the disk syncs in a fraction of a millisecond that
// costs less than what the runtime's own system call path pays (waking
// its monitor thread, handing the processor to another thread and taking
// it back), but not on a disk that takes milliseconds. A single slow sync
// says little (a virtual disk under load has about one in a hundred), so the
// pace is a leaky bucket: each sync slower than slow adds slowSyncWeight,
// each other sync drains one, and the calls are the runtime's ordinary
// ones while the bucket holds ordinaryFrom or more: when more than about
// one sync in eleven is slow, or a few come together. Both kinds of call
// are measured, so the direct ones come back once the disk is quick again.
type syncPace struct {
	slow time.Duration
	// bucket is written by the goroutine syncing the WAL, one at a time
	// but for the moment a new WAL file takes over from the last (an
	// update lost then is harmless); it is atomic because writes read it.
	bucket atomic.Int32
}

const (
	slowWALSync    = 5 * time.Millisecond
	slowSyncWeight = 10
	ordinaryFrom   = 3 * slowSyncWeight
	bucketCap      = 10 * slowSyncWeight
)

func (p *syncPace) quick() bool { return p.bucket.Load() < ordinaryFrom }

// observe records a sync that took took.
func (p *syncPace) observe(took time.Duration) {
	b := p.bucket.Load()
	switch {
	case took > p.slow:
		p.bucket.Store(min(b+slowSyncWeight, bucketCap))
	case b > 0:
		p.bucket.Store(b - 1)
	}
}
