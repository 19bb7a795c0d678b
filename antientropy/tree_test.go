package antientropy

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTreeConcurrentUpdates: writes to one tree from several goroutines
// (node's write path, one goroutine per request) land as if applied one
// by one; run with -race.
func TestTreeConcurrentUpdates(t *testing.T) {
	const writers, keys = 4, 500
	shape := Shape{Segments: 8, Branches: 2} // few segments: writers collide
	concurrent, err := NewTree(shape)
	require.NoError(t, err)
	sequential, err := NewTree(shape)
	require.NoError(t, err)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range keys {
				key := fmt.Appendf(nil, "w%d-k%d", w, i)
				concurrent.Update("b", key, Absent, 1)
				concurrent.Update("b", key, 1, uint64(2+i%3))
			}
		})
	}
	for w := range writers {
		for i := range keys {
			sequential.Update("b", fmt.Appendf(nil, "w%d-k%d", w, i), Absent, uint64(2+i%3))
		}
	}
	wg.Wait()
	require.True(t, concurrent.Equal(sequential))
	require.Equal(t, int64(writers*keys), concurrent.Keys())
}

// TestTreeUpdateNoop: an update that changes nothing leaves the tree and
// its key count alone.
func TestTreeUpdateNoop(t *testing.T) {
	tree, err := NewTree(Shape{16, 4})
	require.NoError(t, err)
	tree.Update("b", []byte("k"), 5, 5)
	tree.Update("b", []byte("k"), Absent, Absent)
	require.Zero(t, tree.Root())
	require.Zero(t, tree.Keys())
}

func TestDiffBranches(t *testing.T) {
	tests := []struct {
		a, b []uint64
		want []int
	}{
		{nil, nil, nil},
		{[]uint64{1, 2, 3}, []uint64{1, 2, 3}, nil},
		{[]uint64{1, 2, 3}, []uint64{0, 2, 4}, []int{0, 2}},
		{[]uint64{1}, []uint64{1, 0, 0}, []int{1, 2}},
		{[]uint64{1, 5}, nil, []int{0, 1}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, DiffBranches(tt.a, tt.b), "%v vs %v", tt.a, tt.b)
	}
}
