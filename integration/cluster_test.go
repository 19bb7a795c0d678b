package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

// keyOn finds a key of bucket b whose three primaries include node.
func keyOn(t *testing.T, members []string, node string) string {
	r, err := ring.New(ring.DefaultPartitions, members)
	require.NoError(t, err)
	for i := range 100000 {
		k := fmt.Sprintf("key-%d", i)
		primaries, _ := r.Preference(r.KeyPartition("b", []byte(k)), 3)
		if contains(primaries, node) {
			return k
		}
	}
	t.Fatalf("no key on %s", node)
	return ""
}

func TestClustersFormFromSeeds(t *testing.T) {
	for _, k := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", k), func(t *testing.T) {
			c := startCluster(t, k)
			var ri ringInfo
			require.NoError(t, json.Unmarshal(c.mustCLI("ring", "--addr", c.nodes[k-1].addr, "-o", "json"), &ri))
			require.Len(t, ri.Members, k)
			require.Equal(t, 1024, ri.Partitions)
			require.Equal(t, 3, ri.N)
			total := 0
			for _, n := range ri.Owned {
				total += n
			}
			require.Equal(t, 1024, total, "every partition has one owner")

			c.mustCLI("put", "--addr", c.nodes[0].addr, "b", "k", "through n1")
			g := c.get(c.nodes[k-1].addr, "b", "k")
			require.True(t, g.Found)
			require.Equal(t, []string{"through n1"}, g.values())
		})
	}
}

func TestQuorumsAcrossProcesses(t *testing.T) {
	c := startCluster(t, 3)
	n1, n3 := c.node("n1"), c.node("n3")
	c.mustCLI("put", "--addr", n1.addr, "--w", "3", "b", "all", "v")
	g := c.get(n3.addr, "b", "all", "--r", "all")
	require.Equal(t, []string{"v"}, g.values())

	// An impossible request is refused at once, with a clear message.
	_, errOut, err := c.cli("get", "--addr", n1.addr, "--r", "4", "b", "all")
	require.Error(t, err)
	require.Contains(t, string(errOut), "invalid argument")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(string(errOut)), "\n")+1, "one line on stderr")

	key := keyOn(t, []string{"n1", "n2", "n3"}, "n3")
	c.kill(n3)
	c.waitMembers(3, "n3")

	c.mustCLI("put", "--addr", n1.addr, "--w", "2", "b", key, "two of three")
	g = c.get(n1.addr, "b", key, "--r", "2")
	require.Equal(t, []string{"two of three"}, g.values())

	_, errOut, err = c.cli("put", "--addr", n1.addr, "--w", "3", "--timeout", "2s", "b", key, "needs three")
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "a failed quorum exits non-zero")
	msg := string(errOut)
	require.Contains(t, msg, "quorum not met")
	require.Contains(t, msg, "need w=3")
	require.Contains(t, msg, "of 3")
	require.Contains(t, msg, "n3")
}

func TestReadRepairAfterAStoppedReplicaMissedWrites(t *testing.T) {
	// Anti-entropy would repair n2 as soon as it is back, before the test
	// could see it stale: this is read repair's test.
	c := startCluster(t, 3, "--aae=false")
	n1, n2 := c.node("n1"), c.node("n2")
	key := keyOn(t, []string{"n1", "n2", "n3"}, "n2")
	c.mustCLI("put", "--addr", n1.addr, "--w", "all", "b", key, "v1")

	c.stop(n2)
	c.waitMembers(3, "n2")
	for i := range 5 {
		g := c.get(n1.addr, "b", key)
		c.mustCLI("put", "--addr", n1.addr, "--context", g.Context, "b", key, fmt.Sprintf("v%d", i+2))
	}
	c.start(n2)
	c.waitReady(n2)
	c.waitMembers(3)

	require.False(t, identical(c.replicas(n1.addr, "b", key)), "n2 missed the writes")
	g := c.get(n1.addr, "b", key, "--r", "all")
	require.Equal(t, []string{"v6"}, g.values())
	require.Eventually(t, func() bool { return identical(c.replicas(n1.addr, "b", key)) }, 30*time.Second, 200*time.Millisecond,
		"read repair makes every replica identical")
}

func TestPausedNodeTimesOutThenRecovers(t *testing.T) {
	c := startCluster(t, 3)
	n1, n3 := c.node("n1"), c.node("n3")
	key := keyOn(t, []string{"n1", "n2", "n3"}, "n3")
	c.mustCLI("put", "--addr", n1.addr, "--w", "all", "b", key, "v")

	require.NoError(t, n3.cmd.Process.Signal(syscall.SIGSTOP))
	defer func() { _ = n3.cmd.Process.Signal(syscall.SIGCONT) }()
	// Requests that need the paused node end by their deadline with a
	// timeout instead of hanging (cli fails the test if one hangs).
	start := time.Now()
	_, errOut, err := c.cli("get", "--addr", n1.addr, "--r", "all", "--timeout", "1s", "b", key)
	require.Error(t, err)
	require.Contains(t, string(errOut), "quorum not met")
	// Timed out on an open connection, or on a new one's handshake once
	// the old one was dropped: either way, named.
	require.Regexp(t, `n3: (timeout|unreachable)`, string(errOut))
	t.Logf("R=all with n3 paused answered in %v (deadline 1s)", time.Since(start))
	_, errOut, err = c.cli("put", "--addr", n1.addr, "--w", "all", "--timeout", "1s", "b", key, "w")
	require.Error(t, err)
	require.Regexp(t, `n3: (timeout|unreachable)`, string(errOut))
	// Requests that do not need it still succeed.
	c.mustCLI("put", "--addr", n1.addr, "--w", "2", "--timeout", "5s", "b", key, "x")

	require.NoError(t, n3.cmd.Process.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool {
		_, _, err := c.cli("get", "--addr", n1.addr, "--r", "all", "--timeout", "2s", "b", key)
		return err == nil
	}, 60*time.Second, 200*time.Millisecond, "the cluster recovers after SIGCONT")
	c.waitMembers(3)
}
