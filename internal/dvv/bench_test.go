package dvv

import (
	"fmt"
	"testing"
)

// divergedPair builds the copies two replicas hold after they took writes
// concurrently: both start from one value that every actor has updated in
// turn (so the vector names `actors` actors), then each replica takes one
// write replacing that value and siblings-1 writes without context, all
// coordinated by its own actor. Syncing them keeps all 2*siblings siblings,
// the most work Sync does for that size.
func divergedPair(siblings, actors int) (Object, Object) {
	value := make([]byte, 64)
	var base Object
	for i := range actors {
		base = mustUpdate(base.Update(base.VV, fmt.Sprintf("node-%02d.partition-0123.incarnation-1", i), value, false, 0))
	}
	diverge := func(actor string) Object {
		o := mustUpdate(base.Update(base.VV, actor, value, false, 0))
		for range siblings - 1 {
			o = mustUpdate(o.Update(nil, actor, value, false, 0))
		}
		return o
	}
	return diverge("node-00.partition-0123.incarnation-1"), diverge("node-01.partition-0123.incarnation-1")
}

func BenchmarkSync(b *testing.B) {
	for _, actors := range []int{3, 10} {
		for _, siblings := range []int{1, 3, 10} {
			b.Run(fmt.Sprintf("actors=%d/siblings=%d", actors, siblings), func(b *testing.B) {
				x, y := divergedPair(siblings, actors)
				b.ReportAllocs()
				for b.Loop() {
					Sync(x, y)
				}
			})
		}
	}
}

// BenchmarkSyncUnchanged is read repair's common case: the replica already
// holds what the merge holds.
func BenchmarkSyncUnchanged(b *testing.B) {
	for _, actors := range []int{3, 10} {
		b.Run(fmt.Sprintf("actors=%d/siblings=3", actors), func(b *testing.B) {
			x, y := divergedPair(3, actors)
			merged := Sync(x, y)
			b.ReportAllocs()
			for b.Loop() {
				Sync(merged, x)
			}
		})
	}
}

// BenchmarkUpdate is a coordinator's write with the context of a read of the
// object: it replaces every sibling.
func BenchmarkUpdate(b *testing.B) {
	for _, actors := range []int{3, 10} {
		for _, siblings := range []int{1, 3, 10} {
			b.Run(fmt.Sprintf("actors=%d/siblings=%d", actors, siblings), func(b *testing.B) {
				local, _ := divergedPair(siblings, actors)
				ctx := local.VV.Clone()
				value := make([]byte, 64)
				b.ReportAllocs()
				for b.Loop() {
					mustUpdate(local.Update(ctx, "node-02.partition-0123.incarnation-1", value, false, 0))
				}
			})
		}
	}
}
