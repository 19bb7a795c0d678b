package quorum

import (
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
)

// The trackers run once per request on the coordinator's hot path.

func BenchmarkWriteTracker(b *testing.B) {
	targets := []Target{{Node: "n1", Primary: true}, {Node: "n4", For: "n2"}, {Node: "n3", Primary: true}}
	spec := Spec{N: 3, W: 2, NotFoundOK: true}
	b.ReportAllocs()
	for b.Loop() {
		w := NewWriteTracker("put", targets, spec)
		w.Ack("n1", true)
		w.Ack("n3", false)
		if !w.Done() || w.Err() != nil {
			b.Fatal("write not decided")
		}
		w.Ack("n4", false)
	}
}

func BenchmarkReadTracker(b *testing.B) {
	targets := []Target{{Node: "n1", Primary: true}, {Node: "n2", Primary: true}, {Node: "n3", Primary: true}}
	spec := Spec{N: 3, R: 2, NotFoundOK: true}
	obj := mustUpdate(dvv.Object{}.Update(nil, "a", []byte("v"), false, 0))
	behind := dvv.Object{}
	b.ReportAllocs()
	for b.Loop() {
		r := NewReadTracker(targets, spec)
		r.Reply("n1", obj, true)
		r.Reply("n2", obj, true)
		if !r.Done() || r.Err() != nil {
			b.Fatal("read not decided")
		}
		r.Reply("n3", behind, false)
		if len(r.Repairs()) != 1 {
			b.Fatal("want one repair")
		}
	}
}
