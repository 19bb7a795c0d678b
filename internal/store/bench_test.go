package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
)

// The benchmarks model one node of the yardstick cluster (DESIGN section
// 14): one-sibling objects with 100-byte values over 20,000 keys, read and
// written by 50 concurrent requests.
const (
	benchKeys    = 20000
	benchWriters = 50
)

// benchValue is a typical small value.
var benchValue = make([]byte, 100)

func benchStore(b *testing.B, noSync bool) *Store {
	o := DefaultOptions(b.TempDir(), "n1")
	o.NoSyncWrites = noSync
	s, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// benchKeySet returns n keys made in advance, so that the benchmarks do not
// count the making of a key.
func benchKeySet(prefix string, n int) [][]byte {
	ks := make([][]byte, n)
	for i := range ks {
		ks[i] = fmt.Appendf(nil, "%s-%08d", prefix, i)
	}
	return ks
}

func overwrite(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
	return mustUpdate(cur.Update(cur.VV, "n1.0123456789abcdef", benchValue, false, 1)), true, nil
}

// fillFlushed writes every key and compacts them into the bottom level,
// then writes half of them again and flushes that to L0: a read consults
// tables (through the block cache, warmed by one read of every key), and
// for half the keys finds a newer version above an older one, as on a node
// that has run for a while.
func fillFlushed(b *testing.B, s *Store, keys [][]byte) {
	b.Helper()
	for round := range 2 {
		for i, k := range keys {
			if round == 1 && i%2 == 1 {
				continue
			}
			if _, err := s.ModifyUnsynced(1, "b", k, overwrite); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if round == 0 {
			if err := s.db.Compact(context.Background(), []byte{prefixObject}, []byte{prefixObject + 1}, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, k := range keys {
		if _, _, err := s.Get(1, "b", k); err != nil {
			b.Fatal(err)
		}
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU starts counting and returns a function that reports the
// process's CPU time per operation (pebble's background work included):
// the figure to compare on a shared machine, where wall time per operation
// moves with everyone else's load.
func measureCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// reportWrites adds the throughput and, for synced writes, how many writes
// each WAL fsync covered: above one means group commit.
func reportWrites(b *testing.B, s *Store, synced bool, syncsBefore uint64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	if syncs := s.Stats().WALSyncs - syncsBefore; synced && syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "writes/fsync")
	}
}

// fillMemTable writes every key five times and leaves them in the
// memtable: 100,000 versions, what a node of the yardstick holds there
// after a minute of updates. A read walks a skiplist of all of them.
func fillMemTable(b *testing.B, s *Store, keys [][]byte) {
	b.Helper()
	for range 5 {
		for _, k := range keys {
			if _, err := s.ModifyUnsynced(1, "b", k, overwrite); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGet reads keys that are there (hit) and keys that never were
// (miss, as the first write of every key reads), from tables or from a
// memtable full of versions.
func BenchmarkGet(b *testing.B) {
	for _, c := range []struct {
		name  string
		found bool
		fill  func(*testing.B, *Store, [][]byte)
	}{{"hit", true, fillFlushed}, {"miss", false, fillFlushed}, {"hit-memtable", true, fillMemTable}} {
		b.Run(c.name, func(b *testing.B) {
			s := benchStore(b, true)
			keys := benchKeySet("key", benchKeys)
			c.fill(b, s, keys)
			if !c.found {
				// Between two stored keys, so inside every table's range.
				for i, k := range keys {
					keys[i] = append(k, 'x')
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			cpu := measureCPU(b)
			for b.Loop() {
				if _, found, err := s.Get(1, "b", keys[r.IntN(len(keys))]); err != nil || found != c.found {
					b.Fatal(found, err)
				}
			}
			cpu()
			b.ReportMetric(float64(s.Stats().ReadAmp), "read-amp")
		})
	}
}

// BenchmarkModify overwrites existing keys, picked uniformly, one at a time: the
// read-modify-write of every replica write.
func BenchmarkModify(b *testing.B) {
	for _, c := range []struct {
		name string
		sync bool
	}{{"nosync", false}, {"sync", true}} {
		b.Run(c.name, func(b *testing.B) {
			s := benchStore(b, !c.sync)
			keys := benchKeySet("key", benchKeys)
			fillFlushed(b, s, keys)
			before := s.Stats().WALSyncs
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			cpu := measureCPU(b)
			for b.Loop() {
				if _, err := s.Modify(1, "b", keys[r.IntN(len(keys))], c.sync, overwrite); err != nil {
					b.Fatal(err)
				}
			}
			cpu()
			reportWrites(b, s, c.sync, before)
		})
	}
}

// BenchmarkModifyParallel overwrites keys from 50 goroutines, picked
// uniformly or by a Zipf law (a few hot keys: writers of one key queue on
// its lock).
func BenchmarkModifyParallel(b *testing.B) {
	for _, c := range []struct {
		name       string
		sync, zipf bool
	}{{"nosync", false, false}, {"sync", true, false}, {"sync-zipf", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			s := benchStore(b, !c.sync)
			keys := benchKeySet("key", benchKeys)
			fillFlushed(b, s, keys)
			before := s.Stats().WALSyncs
			var seed atomic.Uint64
			b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := measureCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(seed.Add(1), 0))
				pick := func() int { return r.IntN(len(keys)) }
				if c.zipf {
					z := rand.NewZipf(r, 1.1, 1, uint64(len(keys)-1))
					pick = func() int { return int(z.Uint64()) }
				}
				for pb.Next() {
					if _, err := s.Modify(1, "b", keys[pick()], c.sync, overwrite); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu()
			reportWrites(b, s, c.sync, before)
		})
	}
}

// BenchmarkObjectCodec measures the record of a one-sibling object whose
// vector names three actors, as every write reads and writes it.
func BenchmarkObjectCodec(b *testing.B) {
	var o dvv.Object
	for i, a := range []string{"n1.0123456789abcdef", "n2.fedcba9876543210", "n3.00112233445566ff"} {
		o = mustUpdate(o.Update(o.VV, a, benchValue, false, 1700000000000000000+int64(i)))
	}
	rec, err := encodeObject(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			if _, err := encodeObject(o); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			if _, err := decodeObject(rec); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
}

// reportCPU adds the process's CPU time per operation since start: on a
// shared machine it moves far less than the wall clock does.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
