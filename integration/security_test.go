package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// secureMaterial makes, with the real CLI, a CA and user root's
// certificate in DIR/ca, node certificates in DIR/nI and a gossip key file
// per node, as an operator would.
func secureMaterial(t *testing.T, c *cluster, dir string, k int) (caDir string) {
	t.Helper()
	caDir = filepath.Join(dir, "ca")
	c.mustCLI("cert", "create-ca", "--certs-dir", caDir)
	c.mustCLI("cert", "create-client", "--certs-dir", caDir, "root")
	keys := filepath.Join(dir, "gossip.keys")
	c.mustCLI("keyring", "generate", "--out", keys)
	raw, err := os.ReadFile(keys)
	require.NoError(t, err)
	for i := 1; i <= k; i++ {
		nd := filepath.Join(dir, fmt.Sprintf("n%d", i))
		c.mustCLI("cert", "create-node", "--certs-dir", nd, "--ca-key", filepath.Join(caDir, "ca.key"), fmt.Sprintf("n%d", i))
		require.NoError(t, os.WriteFile(filepath.Join(nd, "gossip.keys"), raw, 0o600))
	}
	return caDir
}

func startSecureCluster(t *testing.T, k int, extra ...string) (*cluster, string) {
	t.Helper()
	c := &cluster{t: t, bin: cairnBin, base: freeBase(t, k), dir: t.TempDir()}
	sec := t.TempDir()
	caDir := secureMaterial(t, c, sec, k)
	c.secDir, c.certsDir = sec, caDir
	c.env = []string{"CAIRN_CERTS_DIR=" + caDir}
	args := []string{"--certs-dir", filepath.Join(sec, "{node}"), "--gossip-key-file", filepath.Join(sec, "{node}", "gossip.keys")}
	startClusterIn(t, c, k, append(args, extra...)...)
	return c, sec
}

// TestSecureClusterRefusesStrangers: on a cluster with TLS and encrypted
// gossip, a client without a certificate, or with one of another CA, is
// refused with a message that says why, and a node with another gossip
// key never appears in `cairn members`.
func TestSecureClusterRefusesStrangers(t *testing.T) {
	c, _ := startSecureCluster(t, 3)
	n1 := c.node("n1")
	c.mustCLI("put", "--addr", n1.addr, "--w", "all", "b", "k", "v")
	require.Equal(t, []string{"v"}, c.get(c.node("n3").addr, "b", "k", "--r", "all").values())

	plain := &cluster{t: t}
	_, errOut, err := plain.cli("get", "--addr", n1.addr, "b", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "accepts only TLS")

	other := t.TempDir()
	plain.mustCLI("cert", "create-ca", "--certs-dir", other)
	plain.mustCLI("cert", "create-client", "--certs-dir", other, "root")
	_, errOut, err = plain.cli("get", "--addr", n1.addr, "--certs-dir", other, "b", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "unknown authority")

	// A node of the same CA but another gossip key.
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "certs"), 0o755))
	caDir := strings.TrimPrefix(c.env[0], "CAIRN_CERTS_DIR=")
	c.mustCLI("cert", "create-node", "--certs-dir", filepath.Join(dir, "certs"), "--ca-key", filepath.Join(caDir, "ca.key"), "n4")
	c.mustCLI("keyring", "generate", "--out", filepath.Join(dir, "gossip.keys"))
	base := freeBase(t, 1)
	intruder := &proc{name: "n4", log: filepath.Join(dir, "n4.log"), admin: fmt.Sprintf("127.0.0.1:%d", base+201),
		args: []string{"server", "--name", "n4", "--data", filepath.Join(dir, "db"), "--listen", fmt.Sprintf("127.0.0.1:%d", base+1),
			"--gossip", fmt.Sprintf("127.0.0.1:%d", base+101), "--admin", fmt.Sprintf("127.0.0.1:%d", base+201),
			"--join", fmt.Sprintf("127.0.0.1:%d", c.base+101), "--rejoin-interval", "200ms", "--gossip-profile", "local",
			"--certs-dir", filepath.Join(dir, "certs"), "--gossip-key-file", filepath.Join(dir, "gossip.keys"), "--log-format", "console"}}
	c.start(intruder)
	defer c.stop(intruder)
	c.waitReady(intruder)
	require.Eventually(t, func() bool {
		log, _ := os.ReadFile(intruder.log)
		return bytes.Contains(log, []byte("no installed keys could decrypt"))
	}, 20*time.Second, 100*time.Millisecond, "the intruder's log says why it cannot join")
	for range 3 {
		var ms struct{ Members []member }
		require.NoError(t, json.Unmarshal(c.mustCLI("members", "--addr", n1.addr, "-o", "json"), &ms))
		require.Len(t, ms.Members, 3)
		time.Sleep(500 * time.Millisecond)
	}
}

// TestSecureClusterRotatesUnderLoad rotates every node's certificate (new
// files, SIGHUP) and the gossip key (install, use, remove) on a live
// 3-node cluster while `cairn bench` writes: no request fails, and a node
// restarted afterwards rejoins with the rotated material.
func TestSecureClusterRotatesUnderLoad(t *testing.T) {
	c, sec := startSecureCluster(t, 3)
	ops := c.adminToken()
	var addrs []string
	for _, p := range c.nodes {
		addrs = append(addrs, p.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "bench.json")
	bench := exec.CommandContext(ctx, cairnBin, "bench", "--addr", strings.Join(addrs, ","), "--records", "500",
		"--mix", "update=100", "--concurrency", "8", "--duration", "15s", "--out", out)
	bench.Env = append(os.Environ(), c.env...)
	var benchErr bytes.Buffer
	bench.Stderr = &benchErr
	require.NoError(t, bench.Start())
	benchDone := make(chan error, 1)
	go func() { benchDone <- bench.Wait() }()
	// Rotate once the load runs (the bench loads its records first).
	time.Sleep(4 * time.Second)

	caDir := strings.TrimPrefix(c.env[0], "CAIRN_CERTS_DIR=")
	for _, p := range c.nodes {
		c.mustCLI("cert", "create-node", "--overwrite", "--certs-dir", filepath.Join(sec, p.name), "--ca-key", filepath.Join(caDir, "ca.key"), p.name)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	}
	for _, p := range c.nodes {
		require.Eventually(t, func() bool {
			return c.metricAs(p.admin, ops, `cairn_tls_reloads_total{result="ok"}`) >= 1
		}, 20*time.Second, 100*time.Millisecond, "%s reloaded its certificate", p.name)
	}

	type keyringOut struct {
		Nodes []struct {
			Node    string   `json:"node"`
			Primary string   `json:"primary"`
			Keys    []string `json:"keys"`
		} `json:"nodes"`
	}
	keyring := func(args ...string) keyringOut {
		var k keyringOut
		require.NoError(t, json.Unmarshal(c.mustCLI(append([]string{"keyring", "--addr", c.node("n2").addr, "-o", "json"}, args...)...), &k))
		require.Len(t, k.Nodes, 3)
		return k
	}
	oldKey := keyring("list").Nodes[0].Primary
	newKey := strings.TrimSpace(string(c.mustCLI("keyring", "generate")))
	keyring("install", newKey)
	keyring("use", newKey)
	time.Sleep(time.Second)
	for _, n := range keyring("remove", oldKey).Nodes {
		require.Equal(t, []string{newKey}, n.Keys, n.Node)
	}

	require.NoError(t, <-benchDone, "bench: %s", benchErr.String())
	var res struct {
		Run struct {
			Errors int     `json:"errors"`
			Ops    float64 `json:"ops_per_sec"`
		} `json:"run"`
	}
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &res))
	t.Logf("bench during the rotations: %.0f ops/s, %d errors", res.Run.Ops, res.Run.Errors)
	require.Positive(t, res.Run.Ops, "the result was read")
	require.Zero(t, res.Run.Errors, "no request failed during the rotations")

	n3 := c.node("n3")
	c.stop(n3)
	c.start(n3)
	c.waitReady(n3)
	c.waitMembers(3)
	c.mustCLI("put", "--addr", n3.addr, "--w", "all", "b", "after", "v")
}
