package store

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure a Store. Build them with DefaultOptions and change what
// you need; Open reports every invalid field at once.
type Options struct {
	// Dir is the pebble directory, created if missing. One Store per directory:
	// pebble locks it.
	Dir string
	// Node is this node's name. Actor ids are "<Node>.<16 random hex digits>".
	Node string
	// NoSyncWrites lets Modify(sync=false) skip the fsync. Default false: every
	// write is fsynced before Modify returns, whatever the caller passes. With
	// it set, only callers passing sync=true (requests that asked for DW > 0)
	// wait for the disk; see doc.go for what the others can lose.
	NoSyncWrites bool
	// CacheBytes is the size of pebble's block cache, in bytes. Default 64 MiB;
	// zero means the default.
	CacheBytes int64
	// MemTableBytes is the size of one pebble memtable, in bytes. Pebble keeps
	// up to two, so writes may use twice this in memory before they stall on a
	// flush. Default 32 MiB; zero means the default. At most 4 GiB - 1.
	MemTableBytes uint64
	// ObjectCacheBytes bounds the cache of recently read and written object
	// records in front of pebble (cache.go), in bytes. Default 32 MiB; zero
	// means the default, a negative value turns the cache off.
	ObjectCacheBytes int64
	// LockStripes is how many locks serialise read-modify-write of single
	// keys; a key's lock is chosen by hash, so unrelated keys wait on each
	// other only when they collide. A power of two. Default 1024; zero means
	// the default.
	LockStripes int
	// MaxHintBytesPerOwner caps the bytes (keys and values) of the hints
	// kept for one owner, and MaxHintBytes those kept for every owner
	// together; 0 means no cap. A hint write that would grow past either is
	// refused with a *HintCapError (cairn.ErrOverloaded) and changes
	// nothing. Writes that do not grow the hints always pass, and nothing
	// is ever dropped to make room: a hint may be the only other copy of
	// an acknowledged write. The caps do not apply to the node's own data.
	MaxHintBytesPerOwner int64
	MaxHintBytes         int64
	// Logger receives pebble's own messages. Nil discards them: the package
	// itself never logs. Fatalf must not return (pebble calls it when it cannot
	// go on, for example when the WAL cannot be written); with a nil Logger
	// the store panics there.
	Logger pebble.Logger

	// OnObjectWrite, if set, is called after every object write was
	// committed (Modify, ModifyUnsynced): visible, though a synced write's
	// fsync may still be running. It runs under the key's lock, with the
	// object the write replaced (hadOld false, old empty, when there was
	// none) and the new one: the writes of one key reach it in the order
	// they were made. It must be quick and must not call the Store. Anti-entropy keeps
	// its Merkle trees current through it (see aae.go).
	OnObjectWrite func(p uint32, bucket string, key []byte, old dvv.Object, hadOld bool, new dvv.Object)
	// OnPartitionDrop, if set, is called after DropPartition deleted every
	// object of p, under the same lock as the drop.
	OnPartitionDrop func(p uint32)
	// SaveOnClose, if set, is called by Close once every call in flight
	// has returned, so no object write can follow it; the records it
	// returns are stored in the anti-entropy keyspace in the synced batch
	// that marks the shutdown clean. An error is returned by Close and
	// nothing is saved.
	SaveOnClose func() ([]AAERecord, error)

	// beforeWALSync, if set, runs before every fsync of the WAL: tests hold
	// fsyncs back with it to see what waits for them.
	beforeWALSync func()
}

// Defaults for the zero values of Options.
const (
	DefaultCacheBytes       = 64 << 20
	DefaultMemTableBytes    = 32 << 20
	DefaultObjectCacheBytes = 32 << 20
	DefaultLockStripes      = 1024
)

const (
	minMemTableBytes = 1 << 20
	maxMemTableBytes = 4<<30 - 1
	maxLockStripes   = 1 << 20
	maxNodeBytes     = 255
)

// DefaultOptions returns the options of a production node storing in dir.
func DefaultOptions(dir, node string) Options {
	return Options{
		Dir:              dir,
		Node:             node,
		CacheBytes:       DefaultCacheBytes,
		MemTableBytes:    DefaultMemTableBytes,
		ObjectCacheBytes: DefaultObjectCacheBytes,
		LockStripes:      DefaultLockStripes,
	}
}

// withDefaults fills the zero values that mean "the default".
func (o Options) withDefaults() Options {
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = DefaultMemTableBytes
	}
	if o.ObjectCacheBytes == 0 {
		o.ObjectCacheBytes = DefaultObjectCacheBytes
	}
	if o.LockStripes == 0 {
		o.LockStripes = DefaultLockStripes
	}
	return o
}

// Validate reports every problem with the options, each saying what to
// change. Zero values that mean a default are valid.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Dir == "" {
		bad("store: Dir is empty: name the directory that holds (or will hold) the database")
	}
	if o.Node == "" || len(o.Node) > maxNodeBytes {
		bad("store: Node %q: must be 1 to %d bytes", o.Node, maxNodeBytes)
	}
	if o.CacheBytes < 0 {
		bad("store: CacheBytes %d: must be positive (or 0 for %d)", o.CacheBytes, DefaultCacheBytes)
	}
	if o.MemTableBytes < minMemTableBytes || o.MemTableBytes > maxMemTableBytes {
		bad("store: MemTableBytes %d: must be between %d and %d", o.MemTableBytes, minMemTableBytes, uint64(maxMemTableBytes))
	}
	if o.MaxHintBytesPerOwner < 0 || o.MaxHintBytes < 0 {
		bad("store: MaxHintBytesPerOwner %d, MaxHintBytes %d: must be 0 (no cap) or positive", o.MaxHintBytesPerOwner, o.MaxHintBytes)
	}
	if o.LockStripes < 1 || o.LockStripes > maxLockStripes || bits.OnesCount(uint(o.LockStripes)) != 1 {
		bad("store: LockStripes %d: must be a power of two between 1 and %d", o.LockStripes, maxLockStripes)
	}
	return errors.Join(errs...)
}

// pebbleOptions tunes pebble for the store's load: point reads of small
// objects, since every write reads its key first. Bloom filters let a read
// skip each table above the bottom level that does not hold its key (pebble
// does not consult them in the bottom level, where a read that got that far
// has nowhere else to look); a first write of a key, a miss, skips them
// all. BenchmarkGet/miss: -27% CPU per read.
func (o Options) pebbleOptions(c *counters) *pebble.Options {
	logger := o.Logger
	if logger == nil {
		logger = silentLogger{}
	}
	popts := &pebble.Options{
		CacheSize:          o.CacheBytes,
		MemTableSize:       o.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             logger,
		FS:                 newWALFS(vfs.Default, &c.walSyncs, o.beforeWALSync),
		EventListener:      c.eventListener(),
	}
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return popts
}

// silentLogger is pebble's logger when the caller gives none. Fatalf panics
// rather than returning: pebble calls it on failures it cannot continue from
// (a WAL that cannot be written), and returning would let it acknowledge
// writes that are not on disk.
type silentLogger struct{}

func (silentLogger) Infof(string, ...any)  {}
func (silentLogger) Errorf(string, ...any) {}
func (silentLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("store: pebble fatal error: "+format, args...))
}
