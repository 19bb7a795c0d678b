package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSiblingsThroughTheCLI is issue 2's acceptance check as a user would
// run it: two puts without a context are two siblings; a put with the
// context of that get leaves one; a delete with the context reads as not
// found.
//
// Its cluster runs without security (plain TCP and gossip, no users), as
// one may on a closed network: the suite's one such cluster started by the
// harness (TestDevCluster runs `cairn dev --insecure` too); every other
// runs secure.
func TestSiblingsThroughTheCLI(t *testing.T) {
	c := startInsecureCluster(t, cairnBin, 1)
	addr := c.nodes[0].addr
	c.mustCLI("put", "--addr", addr, "demo", "greeting", "hello")
	c.mustCLI("put", "--addr", addr, "demo", "greeting", "bonjour")
	g := c.get(addr, "demo", "greeting")
	require.True(t, g.Found)
	require.ElementsMatch(t, []string{"hello", "bonjour"}, g.values())
	require.NotEmpty(t, g.Context)

	var w struct {
		OK      bool   `json:"ok"`
		Context string `json:"context"`
	}
	require.NoError(t, json.Unmarshal(c.mustCLI("put", "--addr", addr, "-o", "json", "--context", g.Context, "demo", "greeting", "hi"), &w))
	require.True(t, w.OK)
	g = c.get(addr, "demo", "greeting")
	require.Equal(t, []string{"hi"}, g.values())

	c.mustCLI("delete", "--addr", addr, "--context", g.Context, "demo", "greeting")
	g = c.get(addr, "demo", "greeting")
	require.False(t, g.Found, "a get of a deleted key succeeds with found:false")
	require.Empty(t, g.Siblings)

	// The exact shape DESIGN section 11 fixes.
	out := c.mustCLI("get", "--addr", addr, "-o", "json", "demo", "never")
	var raw map[string]any
	require.NoError(t, json.Unmarshal(out, &raw))
	require.Equal(t, map[string]any{"found": false, "siblings": []any{}, "context": ""}, raw)

	// Values from stdin, and a bad context refused with a one-line error.
	cmd := exec.Command(cairnBin, "put", "--addr", addr, "demo", "stdin", "-")
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader("from stdin")
	require.NoError(t, cmd.Run())
	require.Equal(t, []string{"from stdin"}, c.get(addr, "demo", "stdin").values())
	_, errOut, err := c.cli("put", "--addr", addr, "--context", "bm90IGEgY29udGV4dA==", "demo", "k", "v")
	require.Error(t, err)
	require.Contains(t, string(errOut), "invalid argument")
	require.Equal(t, 1, strings.Count(string(errOut), "\n"))
}

// TestDevCluster runs `cairn dev` as `make run` does (its data in ./data)
// and checks the files, ports and shutdown DESIGN section 11 promises, and
// that the cluster is secure and the CLI, run from the same directory with
// nothing set up, finds its certificates. Run again with --insecure, the
// same data serves plain clients.
func TestDevCluster(t *testing.T) {
	base := freeBase(t, 3)
	work := t.TempDir()
	dir := filepath.Join(work, "data")
	dev := exec.Command(cairnBin, "dev", "--nodes", "3", "--base-port", strconv.Itoa(base))
	dev.Dir = work
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := dev.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, dev.Start())
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	defer func() {
		_ = syscall.Kill(-dev.Process.Pid, syscall.SIGKILL)
		killDevNodes(dir, 3) // each in a process group of its own
	}()
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan())
	require.Contains(t, lines.Text(), "3 nodes up")
	var banner strings.Builder
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "Ctrl-C") {
		banner.WriteString(lines.Text() + "\n")
	}
	require.Contains(t, banner.String(), "Security: on")
	require.Contains(t, banner.String(), "The CLI run from this directory finds them")
	go func() {
		for lines.Scan() {
		}
	}()

	c := &cluster{t: t, cwd: work}
	pids := map[string]int{}
	for i := 1; i <= 3; i++ {
		nd := filepath.Join(dir, fmt.Sprintf("n%d", i))
		pidRaw, err := os.ReadFile(filepath.Join(nd, "pid"))
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.TrimSpace(string(pidRaw)))
		require.NoError(t, err)
		pids[fmt.Sprintf("n%d", i)] = pid
		cmdRaw, err := os.ReadFile(filepath.Join(nd, "cmd"))
		require.NoError(t, err)
		args := strings.Split(strings.TrimSpace(string(cmdRaw)), "\n")
		require.Equal(t, "server", args[1])
		require.Contains(t, args, fmt.Sprintf("127.0.0.1:%d", base+i), "data port P+i")
		require.Contains(t, args, fmt.Sprintf("127.0.0.1:%d", base+100+i), "gossip port P+100+i")
		require.Contains(t, args, fmt.Sprintf("127.0.0.1:%d", base+200+i), "admin port P+200+i")
		require.Contains(t, args, "--certs-dir")
		require.Contains(t, args, "--gossip-key-file")
		require.FileExists(t, filepath.Join(nd, "server.log"))
	}
	// Secure: a client without the certificates is refused.
	_, errOut, err := (&cluster{t: t, cwd: t.TempDir()}).cli("get", "--addr", fmt.Sprintf("127.0.0.1:%d", base+1), "b", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "accepts only TLS")
	addr := fmt.Sprintf("127.0.0.1:%d", base+1)
	c.mustCLI("put", "--addr", addr, "b", "k", "v")
	require.Equal(t, []string{"v"}, c.get(fmt.Sprintf("127.0.0.1:%d", base+3), "b", "k", "--r", "all").values())

	// A node killed through its pid file is not restarted by dev...
	require.NoError(t, syscall.Kill(pids["n2"], syscall.SIGKILL))
	require.Eventually(t, func() bool {
		out, _, err := c.cli("members", "--addr", addr, "-o", "json")
		var ms struct{ Members []member }
		if err != nil || json.Unmarshal(out, &ms) != nil {
			return false
		}
		for _, m := range ms.Members {
			if m.Name == "n2" {
				return !m.Alive
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond)
	// ...and comes back from its cmd file, as the chaos scripts do.
	cmdRaw, err := os.ReadFile(filepath.Join(dir, "n2", "cmd"))
	require.NoError(t, err)
	args := strings.Split(strings.TrimSpace(string(cmdRaw)), "\n")
	restarted := exec.Command(args[0], args[1:]...)
	restarted.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, restarted.Start())
	go func() { _ = restarted.Wait() }()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "n2", "pid"), []byte(strconv.Itoa(restarted.Process.Pid)+"\n"), 0o644))
	require.Eventually(t, func() bool {
		_, _, err := c.cli("get", "--addr", fmt.Sprintf("127.0.0.1:%d", base+2), "--r", "all", "b", "k")
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)

	// SIGTERM (what Ctrl-C becomes) stops every node, the restarted one too.
	require.NoError(t, dev.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("cairn dev did not stop within 60s of SIGTERM")
	}
	for name, pid := range map[string]int{"n1": pids["n1"], "n3": pids["n3"], "n2 restarted": restarted.Process.Pid} {
		require.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 10*time.Second, 50*time.Millisecond,
			"%s still running after cairn dev stopped", name)
	}

	// --insecure on the same data: plain TCP, and the CLI, which no longer
	// finds certificates there, speaks it.
	for i := 1; i <= 3; i++ {
		c.waitPortsFree(&proc{addr: fmt.Sprintf("127.0.0.1:%d", base+i), admin: fmt.Sprintf("127.0.0.1:%d", base+200+i),
			args: []string{"--gossip", fmt.Sprintf("127.0.0.1:%d", base+100+i)}})
	}
	plain := exec.Command(cairnBin, "dev", "--nodes", "3", "--base-port", strconv.Itoa(base), "--insecure")
	plain.Dir = work
	plain.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := plain.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, plain.Start())
	defer func() {
		_ = syscall.Kill(-plain.Process.Pid, syscall.SIGTERM)
		_ = plain.Wait()
		killDevNodes(dir, 3) // after a clean stop, none is left
	}()
	lines = bufio.NewScanner(out)
	require.True(t, lines.Scan())
	require.Contains(t, lines.Text(), "3 nodes up")
	go func() {
		for lines.Scan() {
		}
	}()
	require.NoDirExists(t, filepath.Join(dir, "certs"))
	require.Equal(t, []string{"v"}, c.get(addr, "b", "k", "--r", "all").values())
}

// killDevNodes kills, through their pid files, the nodes of a `cairn dev`
// in dir that are still running (dev was killed, or a test failed before
// stopping it); each is a cairn server of its own process group, which a
// signal to dev's group does not reach.
func killDevNodes(dir string, k int) {
	for i := 1; i <= k; i++ {
		raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("n%d", i), "pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && processAlive(pid) && isCairnServer(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// isCairnServer guards against killing an unrelated process that reused
// a pid.
func isCairnServer(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(raw), "server\x00--name")
}
