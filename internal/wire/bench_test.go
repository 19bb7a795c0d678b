package wire

import (
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
)

// The hot messages as a write under load sees them: a 100-byte value, a
// key written before by the three replicas' actors, one live sibling.
var (
	benchValue  = make([]byte, 100)
	benchActors = []string{"n1.0123456789abcdef", "n2.fedcba9876543210", "n3.00112233445566ff"}
)

func benchObject() dvv.Object {
	var o dvv.Object
	for i, a := range benchActors {
		o = mustUpdate(o.Update(o.VV, a, benchValue, false, 1700000000000000000+int64(i)))
	}
	return o
}

func benchMessages() map[string]struct {
	typ  Type
	msg  any
	zero func() any
} {
	obj := benchObject()
	ctx := EncodeContext(obj.VV)
	return map[string]struct {
		typ  Type
		msg  any
		zero func() any
	}{
		"PutReq": {TypePut, &PutReq{Bucket: "bench", Key: []byte("key-00001234"), Value: benchValue, Context: ctx, Opts: DefaultOptions()},
			func() any { return &PutReq{Opts: DefaultOptions()} }},
		"PutResp": {TypePutResp, &PutResp{Context: ctx, RingVersion: 7}, func() any { return &PutResp{} }},
		"GetReq": {TypeGet, &GetReq{Bucket: "bench", Key: []byte("key-00001234"), Opts: DefaultOptions()},
			func() any { return &GetReq{Opts: DefaultOptions()} }},
		"GetResp": {TypeGetResp, &GetResp{Found: true, Siblings: []Sibling{{Value: benchValue, WrittenAt: 1700000000000000000}},
			Context: ctx, Replicas: []string{"n1", "n2"}, RingVersion: 7}, func() any { return &GetResp{} }},
		"ReplicaPutReq": {TypeReplicaPut, &ReplicaPutReq{Partition: 517, Bucket: "bench", Key: []byte("key-00001234"), Object: obj},
			func() any { return &ReplicaPutReq{} }},
		"ReplicaGetResp": {TypeReplicaGetResp, &ReplicaGetResp{Found: true, Object: obj}, func() any { return &ReplicaGetResp{} }},
		"ReplicaPutBatchResp": {TypeReplicaPutBatchResp, &ReplicaPutBatchResp{Items: []ReplicaPutResult{{Durable: true}, {Durable: true}, {Durable: true}}},
			func() any { return &ReplicaPutBatchResp{} }},
	}
}

// BenchmarkCodec measures what a node spends on one hot message besides
// the socket: encoding its frame, and parsing and decoding it at the far
// side.
func BenchmarkCodec(b *testing.B) {
	for name, m := range benchMessages() {
		b.Run(name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 512)
			cpu := cpuTime()
			for b.Loop() {
				var err error
				buf, err = AppendFrame(buf[:0], 1, m.typ, m.msg, DefaultMaxFrame)
				if err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
		b.Run(name+"/decode", func(b *testing.B) {
			raw, err := AppendFrame(nil, 1, m.typ, m.msg, DefaultMaxFrame)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				f, err := ParseFrame(raw[4:])
				if err != nil {
					b.Fatal(err)
				}
				if err := Decode(f.Body, m.zero()); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkContext measures the opaque context a put carries both ways.
func BenchmarkContext(b *testing.B) {
	vv := benchObject().VV
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := DecodeContext(EncodeContext(vv)); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
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

// mustUpdate takes dvv's Update in a history whose counters cannot come
// near the end of their range, so an error is a bug in the test.
func mustUpdate(o dvv.Object, err error) dvv.Object {
	if err != nil {
		panic(err)
	}
	return o
}
