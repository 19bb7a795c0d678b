package coord

import (
	"context"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/quorum"
)

// lateReplicas answers the writes to other nodes by callback, as the
// node's replica set does: n2 at once, n3 from a goroutine of its own, as
// a replica batch's sender does, once the write was already decided by
// n1 (this node) and n2. This node's own copy is durable at once, or,
// with ownSynced, once a worker has waited for it, as for a synced write.
// It stores nothing.
type lateReplicas struct {
	liveReplicas
	ownSynced bool
}

func (r *lateReplicas) Mint(_ context.Context, self quorum.Target, w Write, sync bool) (dvv.Object, func() (bool, error), error) {
	obj, err := dvv.Object{}.Update(nil, self.Node, w.Value, false, 0)
	if !r.ownSynced {
		return obj, nil, err
	}
	return obj, func() (bool, error) { return sync, nil }, err
}

func (r *lateReplicas) WriteAsync(_ context.Context, t quorum.Target, _ Key, _ dvv.Object, sync bool, done func(bool, error)) bool {
	if t.Node == "n3" {
		go done(sync, nil)
		return true
	}
	done(sync, nil)
	return true
}

// BenchmarkPutAnsweredLate is a write decided before its last replica
// answers, the common case at w=2 of 3: what the coordinator spends on
// it, the last answer included, besides the replicas' own work.
func BenchmarkPutAnsweredLate(b *testing.B) {
	for _, bc := range []struct {
		name      string
		ownSynced bool
	}{{"own-at-once", false}, {"own-synced", true}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := New(DefaultConfig("n1"), &lateReplicas{ownSynced: bc.ownSynced}, allUp{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(b.Context(), time.Hour)
			defer cancel()
			w := testWrite("v")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Put(ctx, w, spec(2, 2), route(), false); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
