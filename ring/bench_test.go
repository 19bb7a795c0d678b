package ring

import (
	"fmt"
	"testing"
)

// BenchmarkNew is the cost of a membership change: every node rebuilds its
// ring when the member set changes. DESIGN budget: well under 100ms at S=64.
func BenchmarkNew(b *testing.B) {
	for _, tc := range []struct{ partitions, members int }{
		{DefaultPartitions, 3}, {DefaultPartitions, 16}, {DefaultPartitions, 64}, {MaxPartitions, 64},
	} {
		b.Run(fmt.Sprintf("Q=%d/S=%d", tc.partitions, tc.members), func(b *testing.B) {
			members := randomNames(tc.members)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(tc.partitions, members); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKeyPartition runs once per request.
func BenchmarkKeyPartition(b *testing.B) {
	r := mustNew(b, DefaultPartitions, randomNames(16))
	key := []byte("user:0000000042:profile")
	b.ReportAllocs()
	for b.Loop() {
		_ = r.KeyPartition("accounts", key)
	}
}

// BenchmarkPreference runs once per request; its cost grows with S because
// the fallbacks name every member.
func BenchmarkPreference(b *testing.B) {
	for _, s := range []int{3, 16, 64} {
		b.Run(fmt.Sprintf("S=%d", s), func(b *testing.B) {
			r := mustNew(b, DefaultPartitions, randomNames(s))
			b.ReportAllocs()
			p := uint32(0)
			for b.Loop() {
				_, _ = r.Preference(p, 3)
				p = (p + 1) % DefaultPartitions
			}
		})
	}
}
