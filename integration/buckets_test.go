package integration

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A bucket created with --n 5 --r 3 --w 3 on five nodes stores each key on
// all five and applies R=3 and W=3 to requests that name no quorum: with
// three nodes down its writes and reads fail where the default bucket's
// (N=3, W=2, sloppy) still succeed. Its n cannot change, and a request
// asking more than its n is refused.
func TestBucketPropertiesApplyClusterWide(t *testing.T) {
	c := startClusterOf(t, plainBin(t), 5)
	n1 := c.nodes[0].addr
	out := c.mustCLI("bucket", "create", "--addr", n1, "strict", "--n", "5", "--r", "3", "--w", "3", "-o", "json")
	var b struct {
		Name    string `json:"name"`
		Created bool   `json:"created"`
		N       int    `json:"n"`
		R, W    string
	}
	require.NoError(t, json.Unmarshal(out, &b), "%s", out)
	require.Equal(t, "strict", b.Name)
	require.True(t, b.Created)
	require.Equal(t, 5, b.N)
	require.Equal(t, "3", b.R)

	// Every node learns the properties through gossip; any of them
	// coordinates the write to five replicas.
	last := c.nodes[4].addr
	require.Eventually(t, func() bool {
		out, _, err := c.cli("bucket", "get", "--addr", last, "strict", "-o", "json")
		return err == nil && json.Unmarshal(out, &b) == nil && b.Created
	}, 20*time.Second, 100*time.Millisecond, "n5 never learnt the bucket")
	c.mustCLI("put", "--addr", last, "strict", "k", "v")
	copies := c.replicas(n1, "strict", "k")
	primaries := 0
	for _, cp := range copies {
		if cp.Primary {
			primaries++
			require.True(t, cp.Found, "%s has no copy", cp.Node)
		}
	}
	require.Equal(t, 5, primaries, "five replicas of a key of an n=5 bucket")

	_, errOut, err := c.cli("bucket", "set", "--addr", n1, "strict", "--n", "3")
	require.Error(t, err)
	require.Contains(t, string(errOut), "n is fixed when a bucket is created")
	_, errOut, err = c.cli("get", "--addr", n1, "--r", "6", "strict", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "invalid argument")
	_, errOut, err = c.cli("bucket", "create", "--addr", n1, "strict")
	require.Error(t, err)
	require.Contains(t, string(errOut), "the bucket exists")
	_, errOut, err = c.cli("bucket", "set", "--addr", n1, "never-made", "--r", "1")
	require.Error(t, err)
	require.Contains(t, string(errOut), "no such bucket")
	_, errOut, err = c.cli("bucket", "create", "--addr", n1, "tagged", "--datatype", "map")
	require.Error(t, err)
	require.Contains(t, string(errOut), "want counter or set")
	out = c.mustCLI("bucket", "list", "--addr", n1, "-o", "json")
	var list struct {
		Buckets []struct{ Name string } `json:"buckets"`
	}
	require.NoError(t, json.Unmarshal(out, &list))
	require.Len(t, list.Buckets, 1, "a refused create configures nothing: %s", out)

	// Three of five down: the strict bucket cannot reach W=3 or R=3; the
	// default bucket writes with fallbacks (W=2).
	for _, p := range c.nodes[2:] {
		c.kill(p)
	}
	c.waitMembers(5, "n3", "n4", "n5")
	_, errOut, err = c.cli("put", "--addr", n1, "strict", "k2", "v")
	require.Error(t, err, "W=3 with two of five replicas up")
	require.Contains(t, string(errOut), "quorum")
	_, errOut, err = c.cli("get", "--addr", n1, "strict", "k")
	require.Error(t, err, "R=3 with two of five replicas up")
	require.Contains(t, string(errOut), "quorum")
	c.mustCLI("put", "--addr", n1, "plain", "k", "v")
	c.mustCLI("get", "--addr", n1, "--r", "2", "strict", "k")
}
