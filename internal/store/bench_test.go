package store

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
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

func benchKey(i int) []byte { return fmt.Appendf(nil, "key-%08d", i) }

func overwrite(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
	return cur.Update(cur.VV, "n1.0123456789abcdef", benchValue, false, 1), true, nil
}

// reportWrites adds the throughput and, for synced writes, how many writes
// each WAL fsync covered: above one means group commit.
func reportWrites(b *testing.B, s *Store, synced bool, syncsBefore uint64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	if syncs := s.Stats().WALSyncs - syncsBefore; synced && syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "writes/fsync")
	}
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b, true)
	const keys = 10000
	for i := range keys {
		if _, err := s.Modify(1, "b", benchKey(i), false, overwrite); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; b.Loop(); i++ {
		if _, found, err := s.Get(1, "b", benchKey(i%keys)); err != nil || !found {
			b.Fatal(found, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

func BenchmarkModify(b *testing.B) {
	for _, c := range []struct {
		name string
		sync bool
	}{{"nosync", false}, {"sync", true}} {
		b.Run(c.name, func(b *testing.B) {
			s := benchStore(b, !c.sync)
			before := s.Stats().WALSyncs
			for i := 0; b.Loop(); i++ {
				if _, err := s.Modify(1, "b", benchKey(i%10000), c.sync, overwrite); err != nil {
					b.Fatal(err)
				}
			}
			reportWrites(b, s, c.sync, before)
		})
	}
}

// BenchmarkModifyParallelSync runs synced writes to distinct keys from many
// goroutines (8 per CPU): compare writes/s and writes/fsync with
// BenchmarkModify/sync to see group commit.
func BenchmarkModifyParallelSync(b *testing.B) {
	s := benchStore(b, false)
	before := s.Stats().WALSyncs
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Modify(1, "b", benchKey(int(next.Add(1)%10000)), true, overwrite); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportWrites(b, s, true, before)
}

// BenchmarkObjectCodec measures the record of a one-sibling object whose
// vector names three actors, as every write reads and writes it.
func BenchmarkObjectCodec(b *testing.B) {
	var o dvv.Object
	for i, a := range []string{"n1.0123456789abcdef", "n2.fedcba9876543210", "n3.00112233445566ff"} {
		o = o.Update(o.VV, a, benchValue, false, 1700000000000000000+int64(i))
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
