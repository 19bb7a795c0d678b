package store

import (
	"fmt"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

// A transfer resumed after (bucket, key) sees exactly the objects after
// it, as of the snapshot: writes made after the snapshot are not in it.
func TestScanPartitionAfterResumesPastTheCursor(t *testing.T) {
	s := openTest(t)
	for i := range 10 {
		put(t, s, 7, "b", []byte(fmt.Sprintf("k%02d", i)), "v")
	}
	put(t, s, 8, "b", []byte("other"), "v")
	sn, err := s.CutSnapshot(func() {})
	require.NoError(t, err)
	defer sn.Close()
	put(t, s, 7, "b", []byte("k99"), "after the snapshot")

	keys, bytes, err := sn.PartitionSize(7)
	require.NoError(t, err)
	require.EqualValues(t, 10, keys)
	require.Positive(t, bytes)

	scan := func(bucket string, after []byte) []string {
		var got []string
		require.NoError(t, sn.ScanPartitionAfter(7, bucket, after, func(_ string, key []byte, _ dvv.Object, size int) (bool, error) {
			require.Positive(t, size)
			got = append(got, string(key))
			return true, nil
		}))
		return got
	}
	require.Len(t, scan("", nil), 10)
	require.Equal(t, []string{"k05", "k06", "k07", "k08", "k09"}, scan("b", []byte("k04")))
	require.Empty(t, scan("b", []byte("k09")))
	require.Len(t, scan("a", []byte("zzz")), 10, "a cursor in an earlier bucket starts at the first key after it")
}

func TestDeleteMeta(t *testing.T) {
	s := openTest(t)
	require.NoError(t, s.PutMeta("x", []byte("1")))
	require.NoError(t, s.DeleteMeta("x"))
	_, found, err := s.GetMeta("x")
	require.NoError(t, err)
	require.False(t, found)
	require.NoError(t, s.DeleteMeta("x"), "deleting nothing is fine")
	require.Error(t, s.DeleteMeta(""))
}
