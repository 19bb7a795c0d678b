package antientropy

import (
	"fmt"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/vmihailenco/msgpack/v5"
)

func BenchmarkTreeUpdate(b *testing.B) {
	tree, err := NewTree(DefaultShape())
	if err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%012d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		tree.Update("users", k, uint64(i), uint64(i+1))
		i++
	}
}

// BenchmarkVersion digests an object of 1 and of 10 siblings of 100 bytes
// each, under a vector of 3 actors.
func BenchmarkVersion(b *testing.B) {
	for _, siblings := range []int{1, 10} {
		b.Run(fmt.Sprintf("siblings=%d", siblings), func(b *testing.B) {
			actors := []string{"n1.0123456789abcdef", "n2.0123456789abcdef", "n3.0123456789abcdef"}
			o := dvv.Object{VV: dvv.VV{}}
			for i := range siblings {
				a := actors[i%len(actors)]
				o.VV[a]++
				o.Siblings = append(o.Siblings, dvv.Sibling{Dot: dvv.Dot{Actor: a, Counter: o.VV[a]}, Value: make([]byte, 100)})
			}
			o = dvv.Sync(o, dvv.Object{}) // normalised, as stored
			b.ReportAllocs()
			for b.Loop() {
				Version(o)
			}
		})
	}
}

// BenchmarkDiffKeys compares two 10,000-key lists that differ in 1% of
// their keys, a third each way.
func BenchmarkDiffKeys(b *testing.B) {
	const n = 10_000
	var local, remote []KeyVersion
	for i := range n {
		kv := KeyVersion{Bucket: "users", Key: fmt.Appendf(nil, "user:%012d", i), Version: uint64(i + 1)}
		switch {
		case i%100 != 0:
			local, remote = append(local, kv), append(remote, kv)
		case i%300 == 0:
			local = append(local, kv)
		case i%300 == 100:
			remote = append(remote, kv)
		default:
			local = append(local, kv)
			kv.Version++
			remote = append(remote, kv)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		DiffKeys(local, remote)
	}
}

// indexed is a replica whose key lists are pre-sorted by segment, so the
// benchmark measures the exchange, not the model's scan.
type indexed struct {
	tree *Tree
	segs map[int][]KeyVersion
}

// newIndexed builds a replica of keys keys; with diverge, 100 of them
// spread over the key space differ from the other replica's: the even ones
// are missing, the odd ones at another version.
func newIndexed(b *testing.B, keys int, diverge bool) *indexed {
	tree, err := NewTree(DefaultShape())
	if err != nil {
		b.Fatal(err)
	}
	r := &indexed{tree: tree, segs: map[int][]KeyVersion{}}
	step := keys / 100
	for i := range keys {
		kv := KeyVersion{Bucket: "users", Key: fmt.Appendf(nil, "user:%012d", i), Version: uint64(i + 1)}
		if diverge && i%step == 7 {
			if (i/step)%2 == 0 {
				continue
			}
			kv.Version += 1 << 32
		}
		tree.Update(kv.Bucket, kv.Key, Absent, kv.Version)
		s := tree.SegmentOf(kv.Bucket, kv.Key)
		r.segs[s] = append(r.segs[s], kv)
	}
	return r
}

// keys is what node's filtered scan yields: the keys of the segments in
// canonical order. The benchmark's timer is stopped around it.
func (r *indexed) keys(b *testing.B, segments []int) []KeyVersion {
	b.StopTimer()
	defer b.StartTimer()
	var out []KeyVersion
	for _, s := range segments {
		out = append(out, r.segs[s]...)
	}
	SortKeys(out)
	return out
}

// BenchmarkExchange runs whole exchanges between two replicas of a
// partition (default shape and config) that differ in 100 keys: 50 that
// the peer lacks and 50 at different versions. It reports the msgpack
// bytes that would cross the wire per exchange (queries and answers, the
// bodies node would put in frames) and the rounds.
func BenchmarkExchange(b *testing.B) {
	for _, keys := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d/diffs=100", keys), func(b *testing.B) {
			a, peer := newIndexed(b, keys, false), newIndexed(b, keys, true)
			var wire, rounds, found int
			b.ReportAllocs()
			for b.Loop() {
				wire, rounds, found = 0, 0, 0
				x, err := NewExchange(a.tree, DefaultExchangeConfig())
				if err != nil {
					b.Fatal(err)
				}
				q := x.Pending()
				for {
					var ans Answer
					var local []KeyVersion
					if q.Kind == QueryKeys {
						ans = Answer{Keys: peer.keys(b, q.Segments)}
						local = a.keys(b, q.Segments)
					} else if ans, err = peer.tree.Answer(q); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					wire += encodedLen(b, q) + encodedLen(b, ans)
					b.StartTimer()
					step, err := x.Feed(ans, local)
					if err != nil {
						b.Fatal(err)
					}
					rounds++
					found += step.Repair.Len()
					if step.Done {
						break
					}
					q = step.Query
				}
			}
			b.ReportMetric(float64(wire), "wire-B/exchange")
			b.ReportMetric(float64(rounds), "rounds/exchange")
			b.ReportMetric(float64(found), "keys-found/exchange")
		})
	}
}

func encodedLen(b *testing.B, v any) int {
	raw, err := msgpack.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return len(raw)
}

// BenchmarkSchedulerIdleScan is one turn of a node's anti-entropy loop
// when nothing may start: Next finds nothing, Wake computes when to look
// again. A node with 1,024 partitions and two peers each runs it at every
// wake-up (each result, each budget refill), so it is paid several times
// a second whatever the load.
func BenchmarkSchedulerIdleScan(b *testing.B) {
	cfg := DefaultSchedulerConfig()
	s, err := NewScheduler(cfg, 0)
	if err != nil {
		b.Fatal(err)
	}
	var as []Assignment
	for p := range uint32(1024) {
		as = append(as, Assignment{Partition: p, Peers: []string{"n2", "n3"}})
	}
	if err := s.SetPartitions(as); err != nil {
		b.Fatal(err)
	}
	// Every pair exchanged once, recently: nothing is due.
	now := int64(1)
	for {
		p, ok := s.Next(now)
		if !ok {
			now += second
			if st := s.Stats(); st.NeverExchanged == 0 && st.Running == 0 {
				break
			}
			continue
		}
		s.Finish(p, now, ExchangeStats{})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := s.Next(now); ok {
			b.Fatal("an exchange was due")
		}
		s.Wake(now)
	}
}
