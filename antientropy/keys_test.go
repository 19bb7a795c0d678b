package antientropy

import (
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/stretchr/testify/require"
)

func kv(key string, version uint64) KeyVersion {
	return KeyVersion{Bucket: "b", Key: []byte(key), Version: version}
}

func kvs(list ...KeyVersion) []KeyVersion { return list }

func TestDiffKeys(t *testing.T) {
	tests := []struct {
		name                         string
		local, remote                []KeyVersion
		missingHere, missingThere, d []KeyVersion
	}{
		{name: "both empty"},
		{name: "equal", local: kvs(kv("a", 1), kv("b", 2)), remote: kvs(kv("a", 1), kv("b", 2))},
		{name: "only here", local: kvs(kv("a", 1), kv("b", 2)), missingThere: kvs(kv("a", 1), kv("b", 2))},
		{name: "only there", remote: kvs(kv("a", 1)), missingHere: kvs(kv("a", 1))},
		{
			name:         "interleaved",
			local:        kvs(kv("a", 1), kv("c", 3), kv("d", 4), kv("f", 6)),
			remote:       kvs(kv("b", 2), kv("c", 3), kv("d", 5), kv("e", 5)),
			missingHere:  kvs(kv("b", 2), kv("e", 5)),
			missingThere: kvs(kv("a", 1), kv("f", 6)),
			d:            kvs(kv("d", 5)),
		},
		{
			name:         "absent entries count as not held",
			local:        kvs(kv("a", Absent), kv("b", 2), kv("c", Absent)),
			remote:       kvs(kv("a", 1), kv("b", Absent), kv("d", Absent)),
			missingHere:  kvs(kv("a", 1)),
			missingThere: kvs(kv("b", 2)),
		},
		{
			name:         "differing versions report the peer's",
			local:        kvs(kv("a", 1)),
			remote:       kvs(kv("a", 2)),
			d:            kvs(kv("a", 2)),
			missingHere:  nil,
			missingThere: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			here, there, differ := DiffKeys(tt.local, tt.remote)
			require.Equal(t, tt.missingHere, here, "missing here")
			require.Equal(t, tt.missingThere, there, "missing there")
			require.Equal(t, tt.d, differ, "differ")
		})
	}
}

func TestSegmentSet(t *testing.T) {
	shape := Shape{Segments: 128, Branches: 4}
	set, err := NewSegmentSet(shape, []int{0, 63, 64, 127})
	require.NoError(t, err)
	for i := range shape.Segments {
		require.Equal(t, i == 0 || i == 63 || i == 64 || i == 127, set.HasSegment(i), "segment %d", i)
	}
	require.False(t, set.HasSegment(-1))
	require.False(t, set.HasSegment(128))

	key := []byte("k")
	one, err := NewSegmentSet(shape, []int{shape.SegmentOf("b", key)})
	require.NoError(t, err)
	require.True(t, one.Has("b", key))

	for _, bad := range [][]int{{-1}, {128}, {0, 1 << 40}} {
		_, err := NewSegmentSet(shape, bad)
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, "%v", bad)
	}
}
