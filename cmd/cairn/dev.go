package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/node"
	"github.com/spf13/cobra"
)

func newDevCommand() *cobra.Command {
	var (
		nodes    int
		dataDir  string
		basePort int
		extra    []string
		insecure bool
		secure   bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster of K cairn server processes",
		Long: `Run a local cluster: K child processes "cairn server" named n1..nK. Node i
listens on P+i (data), P+100+i (gossip) and P+200+i (admin HTTP). Each node
gets DIR/nI/pid, DIR/nI/cmd (its exact command line, one argument per line)
and DIR/nI/server.log. A node that dies is not restarted (chaos scripts
restart it from its cmd file). Ctrl-C or SIGTERM stops every node cleanly.

The cluster is secure unless --insecure is given: dev makes a throw-away
CA, user root's client certificate (DIR/certs), each node's certificate
(DIR/nI/certs) and a gossip key, keeps them for the next run, and runs
the nodes with TLS, encrypted gossip and users. The CLI finds DIR/certs by
itself when DIR is ./data (the default) and it runs from the same
directory; elsewhere, export CAIRN_CERTS_DIR=DIR/certs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 99 {
				return fmt.Errorf("invalid argument: --nodes %d: must be between 1 and 99", nodes)
			}
			if basePort < 1 || basePort+200+nodes > 65535 {
				return fmt.Errorf("invalid argument: --base-port %d: ports up to base+200+nodes must fit below 65536", basePort)
			}
			if insecure && secure {
				return fmt.Errorf("invalid argument: --insecure and --secure: choose one")
			}
			if insecure {
				if err := forgetDevSecurity(dataDir, nodes); err != nil {
					return err
				}
			} else {
				secured, err := devSecurity(dataDir, nodes)
				if err != nil {
					return err
				}
				extra = append(secured, extra...)
			}
			return runDev(cmd.Context(), cmd.OutOrStdout(), nodes, dataDir, basePort, extra, !insecure)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes K")
	cmd.Flags().StringVar(&dataDir, "data", "./data", "directory for the nodes' data, pid, cmd and log files")
	cmd.Flags().IntVar(&basePort, "base-port", 7100, "base port P")
	cmd.Flags().StringArrayVar(&extra, "server-arg", nil, "extra argument passed to every cairn server (repeatable); {node} in it stands for the node's name")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "run the nodes without TLS, gossip encryption and users (plain TCP, anyone on this machine may do anything); removes the material a secure run left in DIR")
	cmd.Flags().BoolVar(&secure, "secure", false, "the default")
	_ = cmd.Flags().MarkDeprecated("secure", "a dev cluster is secure unless --insecure is given")
	return cmd
}

// devSecurity makes what a secure dev cluster needs under dataDir, keeping
// whatever an earlier run made: a CA and user root's certificate in
// DIR/certs, each node's certificate in DIR/nI/certs, and a gossip key
// file per node (each node rewrites its own). It returns the server
// arguments that use them; "{node}" stands for the node's name.
func devSecurity(dataDir string, k int) ([]string, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	caDir := filepath.Join(dataDir, "certs")
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	newCA := !exists(filepath.Join(caDir, certs.CAFile))
	if newCA {
		if err := certs.CreateCA(certs.Options{Dir: caDir}); err != nil {
			return nil, err
		}
	}
	if crt, _ := certs.ClientFiles("root"); !exists(filepath.Join(caDir, crt)) {
		if err := certs.CreateClient(certs.Options{Dir: caDir}, "root"); err != nil {
			return nil, err
		}
	}
	keyFile := filepath.Join(dataDir, "gossip.keys")
	if !exists(keyFile) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := node.WriteGossipKeyFile(keyFile, []string{base64.StdEncoding.EncodeToString(key)}); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= k; i++ {
		name := fmt.Sprintf("n%d", i)
		dir := filepath.Join(dataDir, name, "certs")
		if newCA {
			// Signed by a CA that is gone (an --insecure run removed it).
			if err := os.RemoveAll(dir); err != nil {
				return nil, err
			}
		}
		if !exists(filepath.Join(dir, certs.NodeCert)) {
			if err := certs.CreateNode(certs.Options{Dir: dir, CADir: caDir}, name, nil); err != nil {
				return nil, err
			}
		}
		own := filepath.Join(dataDir, name, "gossip.keys")
		if !exists(own) {
			raw, err := os.ReadFile(keyFile)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(own, raw, 0o600); err != nil {
				return nil, err
			}
		}
	}
	return []string{"--certs-dir", filepath.Join(dataDir, "{node}", "certs"), "--gossip-key-file", filepath.Join(dataDir, "{node}", "gossip.keys")}, nil
}

// forgetDevSecurity removes what devSecurity made, before an insecure
// run: the CLI takes DIR/certs as the sign of a secure dev cluster, and a
// client that spoke TLS to these plain nodes would only be refused. The
// nodes' data stays; users added by a secure run stay in the cluster's
// metadata, unused.
func forgetDevSecurity(dataDir string, k int) error {
	paths := []string{filepath.Join(dataDir, "certs"), filepath.Join(dataDir, "gossip.keys")}
	for i := 1; i <= k; i++ {
		name := fmt.Sprintf("n%d", i)
		paths = append(paths, filepath.Join(dataDir, name, "certs"), filepath.Join(dataDir, name, "gossip.keys"))
	}
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

type devNode struct {
	name  string
	cmd   *exec.Cmd
	admin string
	exit  chan error
}

func runDev(ctx context.Context, out io.Writer, k int, dataDir string, base int, extra []string, secure bool) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	dataDir, err = filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	var gossip []string
	for i := 1; i <= k; i++ {
		gossip = append(gossip, net.JoinHostPort("127.0.0.1", strconv.Itoa(base+100+i)))
	}
	var started []*devNode
	// Nodes stop in parallel, so one that has to be killed delays the
	// others by nothing.
	stopAll := func() {
		sw := &syncWriter{w: out}
		var wg sync.WaitGroup
		for _, n := range started {
			wg.Go(func() { n.stop(sw) })
		}
		wg.Wait()
	}
	for i := 1; i <= k; i++ {
		n, err := startDevNode(exe, dataDir, i, base, gossip, extra)
		if err != nil {
			stopAll()
			return err
		}
		started = append(started, n)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, n := range started {
		if err := n.waitReady(waitCtx); err != nil {
			stopAll()
			return fmt.Errorf("%s did not become ready (see %s): %w", n.name,
				filepath.Join(dataDir, n.name, "server.log"), err)
		}
	}
	bin := exe
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			bin = "./" + rel
		}
	}
	security := "Security: off (--insecure): plain TCP and gossip, no users; anyone on this machine may do anything.\n"
	scheme := "http"
	if secure {
		scheme = "https"
		tokenFile, err := devConsoleToken(waitCtx, dataDir, net.JoinHostPort("127.0.0.1", strconv.Itoa(base+1)))
		if err != nil {
			stopAll()
			return fmt.Errorf("a token for the admin ports: %w", err)
		}
		certsDir := filepath.Join(dataDir, "certs")
		finds := "The CLI run from this directory finds them; elsewhere: export CAIRN_CERTS_DIR=" + certsDir
		if wd, err := os.Getwd(); err != nil || filepath.Join(wd, defaultDevCertsDir) != certsDir {
			finds = "The CLI needs: export CAIRN_CERTS_DIR=" + certsDir
		}
		security = fmt.Sprintf(`Security: on. TLS 1.3 with client certificates, encrypted gossip, users and roles.
  CA and user root's certificate in %s. %s
  The admin ports serve metrics, pprof and the console over https (the
  certificate is the dev CA's: a browser warns once) and want an admin's
  token: the console user's token is in %s (the password, any user name).
`, certsDir, finds, tokenFile)
	}
	fmt.Fprintf(out, `cairn dev: %[1]d nodes up (data, pid, cmd and logs in %[2]s)
%[3]s
%[6]sWeb console: %[8]s://%[7]s/ (any node's admin port serves it)

In another terminal:
  %[4]s put demo greeting hello                      # write through n1
  %[4]s put --addr 127.0.0.1:%[5]d demo greeting bonjour  # no context: a second sibling
  %[4]s get -o json --r all demo greeting            # both siblings and their context
  %[4]s put --context <context> demo greeting hi     # replaces exactly what that get saw
  %[4]s members; %[4]s ring; %[4]s debug replicas demo greeting
Ctrl-C stops every node.
`, k, dataDir, devTable(started, base, scheme), bin, base+2, security, started[0].admin, scheme)

	// Watch for nodes dying on their own; they are not restarted.
	dead := make(chan string, k)
	for _, n := range started {
		go func() {
			err := <-n.exit
			n.exit <- err // keep it for stop
			select {
			case dead <- fmt.Sprintf("%s exited: %v", n.name, err):
			default:
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "cairn dev: stopping nodes")
			stopAll()
			return nil
		case msg := <-dead:
			fmt.Fprintf(out, "cairn dev: %s (not restarted)\n", msg)
		}
	}
}

func devTable(nodes []*devNode, base int, scheme string) string {
	var b strings.Builder
	for i, n := range nodes {
		fmt.Fprintf(&b, "  %-4s data 127.0.0.1:%d  gossip 127.0.0.1:%d  admin %s://%s  pid %d\n",
			n.name, base+i+1, base+100+i+1, scheme, n.admin, n.cmd.Process.Pid)
	}
	return b.String()
}

func startDevNode(exe, dataDir string, i, base int, gossip, extra []string) (*devNode, error) {
	name := fmt.Sprintf("n%d", i)
	dir := filepath.Join(dataDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var join []string
	for j, g := range gossip {
		if j != i-1 {
			join = append(join, g)
		}
	}
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(base+200+i))
	args := []string{exe, "server",
		"--name", name,
		"--data", filepath.Join(dir, "db"),
		"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)),
		"--gossip", gossip[i-1],
		"--admin", admin,
		"--log-format", "console",
		"--gossip-profile", "local",
		"--rejoin-interval", "2s",
	}
	if len(join) > 0 {
		// The nodes form a new cluster together: nothing to transfer.
		args = append(args, "--join", strings.Join(join, ","), "--bootstrap")
	}
	for _, a := range extra {
		args = append(args, strings.ReplaceAll(a, "{node}", name))
	}
	logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	c := exec.Command(args[0], args[1:]...)
	c.Stdout, c.Stderr = logf, logf
	// A process group of its own: Ctrl-C reaches dev only, which stops the
	// nodes in order, and a chaos script's signal to one node stays there.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logf.Close()
	if err := os.WriteFile(filepath.Join(dir, "cmd"), []byte(strings.Join(args, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(c.Process.Pid)+"\n"), 0o644); err != nil {
		return nil, err
	}
	n := &devNode{name: name, cmd: c, admin: admin, exit: make(chan error, 1)}
	go func() { n.exit <- c.Wait() }()
	return n, nil
}

func (n *devNode) waitReady(ctx context.Context) error {
	url := "http://" + n.admin + "/readyz"
	for {
		select {
		case err := <-n.exit:
			n.exit <- err
			return fmt.Errorf("exited: %v", err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop asks the node to shut down cleanly, and kills it if it has not within
// 15 seconds. The process may have been replaced by a chaos script's restart:
// the pid file then names the current process, which is stopped too.
func (n *devNode) stop(out io.Writer) {
	select {
	case err := <-n.exit:
		n.exit <- err
	default:
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-n.exit:
			n.exit <- err
		case <-time.After(15 * time.Second):
			fmt.Fprintf(out, "cairn dev: %s did not stop in 15s, killing it\n", n.name)
			_ = n.cmd.Process.Kill()
			<-n.exit
		}
	}
	stopRestarted(n, out)
}

// stopRestarted stops a node a chaos script restarted outside dev, found
// through its pid file, so Ctrl-C leaves no node behind.
func stopRestarted(n *devNode, out io.Writer) {
	pidFile := filepath.Join(filepath.Dir(n.cmdPath()), "pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid == n.cmd.Process.Pid || pid <= 1 {
		return
	}
	p, err := os.FindProcess(pid)
	if err != nil || p.Signal(syscall.Signal(0)) != nil {
		return
	}
	if !isCairnServer(pid) {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) || err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(out, "cairn dev: restarted %s (pid %d) did not stop in 15s, killing it\n", n.name, pid)
	_ = p.Kill()
}

func (n *devNode) cmdPath() string {
	for i, a := range n.cmd.Args {
		if a == "--data" && i+1 < len(n.cmd.Args) {
			return filepath.Join(filepath.Dir(n.cmd.Args[i+1]), "cmd")
		}
	}
	return ""
}

// isCairnServer guards against signalling an unrelated process that reused
// the pid.
func isCairnServer(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(raw), "server\x00--name")
}

// syncWriter lets nodes stopping in parallel report on one writer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// devConsoleTokenFile, in the dev cluster's certificates directory,
// holds the console user's token.
const devConsoleTokenFile = "console.token"

// devConsoleToken makes sure a secure dev cluster has an admin user,
// console, whose token is in DIR/certs/console.token (owner-only), so
// that the admin ports (metrics, the web console) can be used: it adds
// the user, as root, on the first run, and keeps the file afterwards.
func devConsoleToken(ctx context.Context, dataDir, addr string) (string, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	caDir := filepath.Join(dataDir, "certs")
	path := filepath.Join(caDir, devConsoleTokenFile)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	t, err := client.TLSFromCertsDir(caDir, "root")
	if err != nil {
		return "", err
	}
	c, err := client.New(ctx, client.Config{Seeds: []string{addr}, TLS: t, Routing: client.SeedsOnly})
	if err != nil {
		return "", err
	}
	defer c.Close()
	token, err := c.AddUser(ctx, "console", []string{"admin"}, true)
	if errors.Is(err, cairn.ErrInvalidArgument) {
		token, err = c.NewUserToken(ctx, "console") // added by a run whose file is gone
	}
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(token+"\n"), 0o600)
}
