package node

import (
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// A bucket's sibling limit replaces the node's for its client writes, and
// its notfound_ok its requests' default; a bucket never configured keeps
// the node's.
func TestBucketSiblingLimitAndDefaults(t *testing.T) {
	tc := startCluster(t, 1, nil)
	c := tc.client("n1")
	ctx := t.Context()
	two, strict := 2, false
	b, err := c.CreateBucket(ctx, "few", client.BucketChange{SiblingLimit: &two, NotFoundOK: &strict})
	require.NoError(t, err)
	require.Equal(t, 2, b.SiblingLimit)
	require.Equal(t, "default", b.R)

	for i := range 3 {
		_, err := c.Put(ctx, "few", []byte("k"), []byte{byte(i)})
		if i < 2 {
			require.NoError(t, err)
			continue
		}
		require.ErrorIs(t, err, cairn.ErrInvalidArgument)
		require.ErrorContains(t, err, "too many siblings: 3")
	}
	for i := range 3 {
		_, err := c.Put(ctx, "plain", []byte("k"), []byte{byte(i)})
		require.NoError(t, err, "the node's limit (100) holds for other buckets")
	}

	props := tc.nodes["n1"].bucketProps("few")
	require.NotNil(t, props.NotFoundOK)
	spec, err := tc.nodes["n1"].resolveQuorums("get", tc.nodes["n1"].ring(), props, wire.DefaultOptions())
	require.NoError(t, err)
	require.False(t, spec.NotFoundOK, "the bucket's notfound_ok is the request's default")

	b, err = c.Bucket(ctx, "plain")
	require.NoError(t, err)
	require.False(t, b.Created)
	require.Equal(t, "siblings", b.Conflict)
	_, err = c.SetBucket(ctx, "few", client.BucketChange{Datatype: ptrTo("counter")})
	require.ErrorContains(t, err, "datatype is fixed")
}

func ptrTo[T any](v T) *T { return &v }
