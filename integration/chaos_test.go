package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// chaosDir holds the chaos scripts; go test runs in this package's
// directory.
const chaosDir = "../scripts/chaos"

// chaosRun runs one chaos script and returns its stdout, stderr and exit
// status. Nothing a script does may take minutes.
func chaosRun(t *testing.T, script string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(chaosDir, script), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within 3m", script, strings.Join(args, " "))
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", script, err)
	}
	return stdout.String(), stderr.String(), 0
}

// chaos runs a script that must succeed, and returns the one line it
// prints.
func chaos(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, errOut, code := chaosRun(t, script, args...)
	require.Zero(t, code, "%s %s: %s", script, strings.Join(args, " "), errOut)
	require.Equal(t, 1, strings.Count(out, "\n"), "%s prints one line, got %q", script, out)
	t.Logf("%s", strings.TrimSpace(out))
	return out
}

// chaosRefused runs a script that must refuse its arguments: exit status 2,
// nothing on stdout, a message naming the problem on stderr.
func chaosRefused(t *testing.T, want string, script string, args ...string) {
	t.Helper()
	out, errOut, code := chaosRun(t, script, args...)
	require.Equal(t, 2, code, "%s %s: stdout %q stderr %q", script, strings.Join(args, " "), out, errOut)
	require.Empty(t, out)
	require.Contains(t, errOut, want)
	require.True(t, strings.HasPrefix(errOut, strings.TrimSuffix(script, ".sh")+": "), "the message names the command: %q", errOut)
}

// partitionUnsupported says why iptables partitions cannot run here, or
// returns "".
func partitionUnsupported(dev bool) string {
	if os.Geteuid() != 0 {
		return "partitions change iptables rules, which needs root"
	}
	for _, tool := range []string{"iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed"
		}
	}
	if dev {
		mounts, err := os.ReadFile("/proc/self/mounts")
		if err != nil || !strings.Contains(string(mounts), " cgroup2 ") {
			return "no cgroup2 hierarchy is mounted, which a dev partition needs"
		}
	}
	return ""
}

// devCluster is a `cairn dev` process and its nodes n1..nK.
type devCluster struct {
	*cluster
	dir  string
	base int
	k    int
}

// devClients is the CLI and SDK side of a (secure) `cairn dev` cluster
// in dir: its certificates are in dir/certs.
func devClients(t *testing.T, dir string) *cluster {
	return clientsOf(t, filepath.Join(dir, "certs"))
}

// clientsOf is the CLI and SDK side of a cluster whose clients'
// certificates are in certsDir (user root's); "" for plain TCP.
func clientsOf(t *testing.T, certsDir string) *cluster {
	c := &cluster{t: t, certsDir: certsDir}
	if certsDir != "" {
		c.env = []string{"CAIRN_CERTS_DIR=" + certsDir}
	}
	return c
}

// startDevCluster runs `cairn dev` with k nodes; serverArgs go to every
// node's `cairn server`.
func startDevCluster(t *testing.T, k int, serverArgs ...string) *devCluster {
	t.Helper()
	dir := t.TempDir()
	d := &devCluster{cluster: devClients(t, dir), dir: dir, base: freeBase(t, k), k: k}
	out, err := os.Create(filepath.Join(d.dir, "dev.out"))
	require.NoError(t, err)
	defer out.Close()
	args := []string{"dev", "--nodes", strconv.Itoa(k), "--data", d.dir, "--base-port", strconv.Itoa(d.base)}
	for _, a := range serverArgs {
		args = append(args, "--server-arg", a)
	}
	dev := exec.Command(cairnBin, args...)
	dev.Stdout, dev.Stderr = out, out
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, dev.Start())
	exited := make(chan struct{})
	go func() {
		_ = dev.Wait()
		close(exited)
	}()
	t.Cleanup(func() { d.stop(dev, exited) })
	all := map[string]bool{}
	for i := 1; i <= k; i++ {
		all[fmt.Sprintf("n%d", i)] = true
	}
	for i := 1; i <= k; i++ {
		d.waitView(fmt.Sprintf("n%d", i), all)
	}
	return d
}

// stop heals a partition the test left, then stops dev with SIGTERM (it
// stops restarted nodes through their pid files), and kills whatever is
// left.
func (d *devCluster) stop(dev *exec.Cmd, exited chan struct{}) {
	if _, err := os.Stat(filepath.Join(d.dir, ".chaos-partition")); err == nil {
		out, errOut, code := chaosRun(d.t, "heal.sh", "--dev", d.dir)
		d.t.Logf("cleanup: heal.sh: %d %s%s", code, out, errOut)
	}
	_ = dev.Process.Signal(syscall.SIGCONT)
	_ = dev.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		d.t.Errorf("cairn dev did not stop within 60s of SIGTERM")
		_ = syscall.Kill(-dev.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	for i := 1; i <= d.k; i++ {
		if pid := d.pid(fmt.Sprintf("n%d", i)); processAlive(pid) {
			d.t.Errorf("n%d (pid %d) still runs after cairn dev stopped", i, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if d.t.Failed() {
		for i := 1; i <= d.k; i++ {
			b, _ := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("n%d", i), "server.log"))
			d.t.Logf("---- n%d log (last 4 KiB) ----\n%s", i, tail(b, 4096))
		}
	}
}

// on returns d for subtest t: failures stop t, not its parent.
func (d *devCluster) on(t *testing.T) *devCluster {
	c := *d
	c.cluster = devClients(t, d.dir)
	return &c
}

func (d *devCluster) addr(name string) string {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "n"))
	require.NoError(d.t, err)
	return fmt.Sprintf("127.0.0.1:%d", d.base+i)
}

func (d *devCluster) pid(name string) int {
	raw, err := os.ReadFile(filepath.Join(d.dir, name, "pid"))
	require.NoError(d.t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(d.t, err)
	return pid
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	s := processState(pid)
	return s != "" && s != "Z" && s != "X"
}

// processState is the state letter of /proc/PID/stat, "" if there is no
// such process.
func processState(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(raw)
	s = s[strings.LastIndexByte(s, ')')+2:]
	return s[:1]
}

// view is one node's opinion of who is alive.
func view(c *cluster, addr string) (map[string]bool, error) {
	out, _, err := c.cli("members", "--addr", addr, "-o", "json")
	if err != nil {
		return nil, err
	}
	var ms struct{ Members []member }
	if err := json.Unmarshal(out, &ms); err != nil {
		return nil, err
	}
	v := map[string]bool{}
	for _, m := range ms.Members {
		v[m.Name] = m.Alive
	}
	return v, nil
}

// waitView waits until node `via` sees exactly `want` (name: alive). A
// node cut off alone takes longest: it has nobody to confirm its suspicions.
func (d *devCluster) waitView(via string, want map[string]bool) {
	d.t.Helper()
	waitForView(d.t, d.cluster, d.addr(via), via, want)
}

func waitForView(t *testing.T, c *cluster, addr, via string, want map[string]bool) {
	t.Helper()
	var last map[string]bool
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		v, err := view(c, addr)
		if err == nil && fmt.Sprint(v) == fmt.Sprint(want) {
			return
		}
		last = v
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never saw %v; last saw %v", via, want, last)
}

// TestChaosScriptsDev drives every chaos script against a 3-node `cairn
// dev` cluster: what each does must be visible in the cluster, and bad
// arguments must change nothing.
func TestChaosScriptsDev(t *testing.T) {
	parent, d := t, startDevCluster(t, 3)
	dev := []string{"--dev", d.dir}
	all := map[string]bool{"n1": true, "n2": true, "n3": true}
	d.mustCLI("put", "--addr", d.addr("n1"), "--w", "all", "chaos", "k", "v")

	t.Run("bad arguments change nothing", func(t *testing.T) {
		d := d.on(t)
		pids := map[string]int{"n1": d.pid("n1"), "n2": d.pid("n2"), "n3": d.pid("n3")}
		chaosRefused(t, "unknown flag --bogus", "kill.sh", append(dev, "--bogus", "n1")...)
		chaosRefused(t, "unknown node n9 in "+d.dir+" (nodes: n1 n2 n3)", "kill.sh", append(dev, "n9")...)
		chaosRefused(t, "want exactly one NODE, got 0", "pause.sh", dev...)
		chaosRefused(t, "want exactly one NODE, got 2", "resume.sh", append(dev, "n1", "n2")...)
		chaosRefused(t, "give one target", "kill.sh", append(dev, "--docker", "p", "n1")...)
		chaosRefused(t, "no cairn dev cluster at /nonexistent", "kill.sh", "--dev", "/nonexistent", "n1")
		chaosRefused(t, "invalid node name", "kill.sh", append(dev, "../n1")...)
		chaosRefused(t, "n1 is still running (pid", "restart.sh", append(dev, "n1")...)
		chaosRefused(t, "want two sides, got 1", "partition.sh", append(dev, "n1")...)
		chaosRefused(t, "n2 is named twice", "partition.sh", append(dev, "n1,n2", "n2,n3")...)
		chaosRefused(t, "invalid side 'n1,,n2'", "partition.sh", append(dev, "n1,,n2", "n3")...)
		chaosRefused(t, "unknown node n7", "partition.sh", append(dev, "n1", "n7")...)
		chaosRefused(t, "takes no arguments", "heal.sh", append(dev, "n1")...)

		// A node with a cmd file but no pid file, and one whose pid file
		// names a process that is not that node (this test). n1's command
		// exits at once: restarting it fails, saying so.
		fake := t.TempDir()
		for _, n := range []string{"n1", "n2"} {
			require.NoError(t, os.MkdirAll(filepath.Join(fake, n), 0o755))
			cmd := strings.Join([]string{"/bin/false", "server", "--name", n, "--listen", "127.0.0.1:1"}, "\n")
			require.NoError(t, os.WriteFile(filepath.Join(fake, n, "cmd"), []byte(cmd+"\n"), 0o644))
		}
		require.NoError(t, os.WriteFile(filepath.Join(fake, "n2", "pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))
		chaosRefused(t, "n1: no pid file", "kill.sh", "--dev", fake, "n1")
		chaosRefused(t, fmt.Sprintf("n2 is not running (pid file says %d", os.Getpid()), "pause.sh", "--dev", fake, "n2")
		out, errOut, code := chaosRun(t, "restart.sh", "--dev", fake, "n1")
		require.Equal(t, 1, code, "stdout %q stderr %q", out, errOut)
		require.Contains(t, errOut, "exited during start")

		for name, pid := range pids {
			require.Equal(t, pid, d.pid(name), "%s's pid file changed", name)
			require.True(t, processAlive(pid), "%s died", name)
			require.NotEqual(t, "T", processState(pid), "%s was stopped", name)
		}
		d.waitView("n1", all)
	})

	t.Run("kill and restart", func(t *testing.T) {
		skipAfterFailure(t, parent)
		d := d.on(t)
		pid := d.pid("n2")
		require.Contains(t, chaos(t, "kill.sh", append(dev, "n2")...), "killed n2")
		// kill.sh returns once the process is exiting (a zombie, or its
		// /proc entry going); the state this test reads may lag a moment.
		require.Eventually(t, func() bool { return !processAlive(pid) }, 5*time.Second, 20*time.Millisecond,
			"n2 (pid %d) still runs", pid)
		d.waitView("n1", map[string]bool{"n1": true, "n2": false, "n3": true})
		chaosRefused(t, "n2 is not running", "kill.sh", append(dev, "n2")...)

		require.Contains(t, chaos(t, "restart.sh", append(dev, "n2")...), "restarted n2")
		restarted := d.pid("n2")
		require.NotEqual(t, pid, restarted)
		require.True(t, processAlive(restarted))
		require.Equal(t, restarted, sessionID(t, restarted), "a restarted node leads a session of its own")
		d.waitView("n2", all)
		d.waitView("n1", all)
		// Its own copy came back from its disk, not from a repair.
		for _, cp := range d.replicas(d.addr("n2"), "chaos", "k") {
			require.True(t, cp.Found, "%s lost its copy: %+v", cp.Node, cp)
		}
		require.Equal(t, []string{"v"}, d.get(d.addr("n2"), "chaos", "k", "--r", "all").values())
	})

	t.Run("pause and resume", func(t *testing.T) {
		skipAfterFailure(t, parent)
		d := d.on(t)
		pid := d.pid("n3")
		require.Contains(t, chaos(t, "pause.sh", append(dev, "n3")...), "paused n3")
		require.Equal(t, "T", processState(pid))
		_, errOut, err := d.cli("get", "--addr", d.addr("n1"), "--r", "all", "--timeout", "1s", "chaos", "k")
		require.Error(t, err, "a read needing the paused n3 must fail")
		t.Logf("read needing paused n3: %s", strings.TrimSpace(string(errOut)))
		d.waitView("n1", map[string]bool{"n1": true, "n2": true, "n3": false})

		require.Contains(t, chaos(t, "resume.sh", append(dev, "n3")...), "resumed n3")
		require.NotEqual(t, "T", processState(pid))
		require.Contains(t, chaos(t, "resume.sh", append(dev, "n3")...), "was not paused")
		d.waitView("n1", all)
		d.waitView("n3", all)
		require.Equal(t, []string{"v"}, d.get(d.addr("n1"), "chaos", "k", "--r", "all").values())
	})

	t.Run("partition and heal", func(t *testing.T) {
		skipAfterFailure(t, parent)
		d := d.on(t)
		if why := partitionUnsupported(true); why != "" {
			t.Skip("dev partition not tested: " + why)
		}
		require.Contains(t, chaos(t, "partition.sh", append(dev, "n1", "n2,n3")...), "partitioned n1 | n2,n3")
		d.waitView("n2", map[string]bool{"n1": false, "n2": true, "n3": true})
		d.waitView("n1", map[string]bool{"n1": true, "n2": false, "n3": false})
		// The test's own CLI sits in neither side and reaches both; each
		// side takes writes at W=1.
		d.mustCLI("put", "--addr", d.addr("n1"), "--w", "1", "chaos", "left", "from n1")
		d.mustCLI("put", "--addr", d.addr("n3"), "--w", "1", "chaos", "right", "from n3")
		// A node restarted during the partition stays on its side.
		chaos(t, "kill.sh", append(dev, "n3")...)
		require.Contains(t, chaos(t, "restart.sh", append(dev, "n3")...), "inside its side of the partition")
		d.waitView("n3", map[string]bool{"n1": false, "n2": true, "n3": true})

		require.Contains(t, chaos(t, "heal.sh", dev...), "healed the partition n1 | n2,n3")
		require.Contains(t, chaos(t, "heal.sh", dev...), "no partition to heal")
		for _, n := range []string{"n1", "n2", "n3"} {
			d.waitView(n, all)
		}
		require.Equal(t, []string{"from n1"}, d.get(d.addr("n3"), "chaos", "left", "--r", "all").values())
		require.Equal(t, []string{"from n3"}, d.get(d.addr("n1"), "chaos", "right", "--r", "all").values())
	})
}

// skipAfterFailure skips a step of a test whose earlier step failed: they
// share one cluster, whose state is then unknown.
func skipAfterFailure(t, parent *testing.T) {
	if parent.Failed() {
		t.Skip("an earlier step failed")
	}
}

// sessionID reads the session of pid from /proc/PID/stat.
func sessionID(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	sid, err := strconv.Atoi(fields[3])
	require.NoError(t, err)
	return sid
}
