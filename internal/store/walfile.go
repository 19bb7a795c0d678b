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
	return &walFS{FS: fs, syncs: syncs, beforeSync: beforeSync,
		pace: syncPace{epoch: time.Now(), slow: slowWALSync, backoff: slowWALBackoff}}
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
	if f.direct == nil || !f.fs.pace.quick() {
		return f.File.SyncData()
	}
	start := f.fs.pace.now()
	err := f.direct.syncData()
	f.fs.pace.observe(start, f.fs.pace.now())
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

// A WAL sync slower than slowWALSync sends the WAL's writes and syncs of
// the next slowWALBackoff through the Go runtime's ordinary system calls
// (see syncPace).
const (
	slowWALSync    = 5 * time.Millisecond
	slowWALBackoff = time.Second
)

// syncPace decides whether the WAL's writes and syncs may be direct
// system calls. A direct call keeps its goroutine's processor for as long
// as the disk takes, and a stop-the-world phase of the garbage collector
// waits for it. While the disk syncs in a fraction of a millisecond that
// costs less than what the runtime's own system call path pays (waking
// its monitor thread, handing the processor to another thread and taking
// it back), but not on a disk that takes milliseconds: after a slow sync
// the ordinary calls are used until a backoff with no slow sync has
// passed, and then direct ones are tried again.
type syncPace struct {
	epoch   time.Time
	slow    time.Duration
	backoff time.Duration
	// ordinaryUntil is when direct calls may be used again, in
	// nanoseconds since epoch (monotonic).
	ordinaryUntil atomic.Int64
}

func (p *syncPace) now() int64 { return int64(time.Since(p.epoch)) }

func (p *syncPace) quick() bool { return p.quickAt(p.now()) }

func (p *syncPace) quickAt(now int64) bool { return now >= p.ordinaryUntil.Load() }

// observe records a direct sync that ran from start to end.
func (p *syncPace) observe(start, end int64) {
	if time.Duration(end-start) > p.slow {
		p.ordinaryUntil.Store(end + int64(p.backoff))
	}
}
