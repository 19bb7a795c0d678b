package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/node"
	"github.com/stretchr/testify/require"
)

// cairnBin is the binary built once for every test of the package.
var cairnBin string

// plain is the binary built without the race detector, for the tests
// whose figure is a time bound: the detector slows the servers several
// times over, and the bound is the one a user's build must meet.
var plain struct {
	once sync.Once
	path string
	err  error
}

func plainBin(t *testing.T) string {
	t.Helper()
	plain.once.Do(func() {
		plain.path = filepath.Join(filepath.Dir(cairnBin), "cairn-plain")
		out, err := exec.Command("go", "build", "-o", plain.path, "github.com/cairnkv/cairn/cmd/cairn").CombinedOutput()
		if err != nil {
			plain.err = fmt.Errorf("building cairn without -race: %v\n%s", err, out)
		}
	})
	require.NoError(t, plain.err)
	return plain.path
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cairnBin = filepath.Join(dir, "cairn")
	// The binary is race-built, so the tests also check the processes for
	// races; CAIRN_INTEGRATION_RACE=0 builds it plain, for measuring.
	args := []string{"build", "-race", "-o", cairnBin, "github.com/cairnkv/cairn/cmd/cairn"}
	if os.Getenv("CAIRN_INTEGRATION_RACE") == "0" {
		args = slices.Delete(args, 1, 2)
	}
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	// A race-built program sleeps a second before it exits (the race
	// runtime's atexit_sleep_ms), which every CLI command and every node
	// the tests stop would pay; the children inherit this environment.
	if err := os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freeBase finds a base port P such that P+1..P+k, P+101..P+100+k and
// P+201..P+200+k are all free, the layout `cairn dev` uses.
//
// P is chosen below the kernel's ephemeral port range. Tests kill a node
// and start it again on the same ports; inside that range, any outgoing
// connection made meanwhile (a peer's, a client's) may be given one of the
// dead node's ports as its local port and hold it for as long as it lives,
// and the restart could never bind it.
func freeBase(t testing.TB, k int) int {
	t.Helper()
	const lowest = 10000
	span := ephemeralLow() - 301 - lowest
	if span < 1000 {
		t.Fatalf("the ephemeral port range starts at %d: too low to leave test ports below it", ephemeralLow())
	}
	for attempt := 0; attempt < 200; attempt++ {
		base := lowest + (os.Getpid()*7919+attempt*613+int(time.Now().UnixNano()%9973))%span
		ok := true
		for i := 1; i <= k && ok; i++ {
			for _, off := range []int{0, 100, 200} {
				ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+off+i)))
				if err != nil {
					ok = false
					break
				}
				_ = ln.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range, from
// which outgoing connections take their local ports (Linux's default where
// the range cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil {
				return lo
			}
		}
	}
	return 32768
}

// proc is one `cairn server` process of a test cluster.
type proc struct {
	name  string
	args  []string
	cmd   *exec.Cmd
	log   string
	data  string
	admin string
	addr  string
	exit  chan struct{}
}

// cluster runs K `cairn server` processes on 127.0.0.1 with the port
// layout of `cairn dev`. It is secure, as a cluster is by default: TLS
// with client certificates, encrypted gossip and users, its material made
// under secDir; the CLI and the SDK act as user root.
type cluster struct {
	t     *testing.T
	bin   string // the server binary: cairnBin unless a test chose another
	base  int
	dir   string
	nodes []*proc
	env   []string // added to the CLI's environment (CAIRN_CERTS_DIR of a secure cluster)
	cwd   string   // the CLI's working directory, with no CAIRN_* variables; empty: the test's, with them

	insecure bool   // plain TCP and gossip, no users (startInsecureCluster)
	secDir   string // secDir/ca: CA and root; secDir/NAME: a node's certificate and gossip key
	certsDir string // the clients' certificates directory; empty: plain TCP

	tokenOnce sync.Once
	token     string // an admin user's token for the admin ports (adminToken)
}

func startCluster(t *testing.T, k int, extra ...string) *cluster {
	t.Helper()
	return startClusterOf(t, cairnBin, k, extra...)
}

// startClusterOf is startCluster with the servers run from bin.
func startClusterOf(t *testing.T, bin string, k int, extra ...string) *cluster {
	t.Helper()
	return startClusterIn(t, &cluster{t: t, bin: bin, base: freeBase(t, k), dir: t.TempDir()}, k, extra...)
}

// startInsecureCluster is startClusterOf with security off (no TLS, no
// gossip key, no users), as a cluster on a closed network may run.
func startInsecureCluster(t *testing.T, bin string, k int, extra ...string) *cluster {
	t.Helper()
	return startClusterIn(t, &cluster{t: t, bin: bin, base: freeBase(t, k), dir: t.TempDir(), insecure: true}, k, extra...)
}

// startClusterIn starts c's k servers; "{node}" in an extra argument
// stands for each node's name, as in `cairn dev --server-arg`. Unless c is
// insecure or a test made its own material (c.certsDir set), it makes a CA,
// root's certificate, and each node's certificate and gossip key.
func startClusterIn(t *testing.T, c *cluster, k int, extra ...string) *cluster {
	t.Helper()
	if !c.insecure && c.certsDir == "" {
		c.makeCA()
		for i := 1; i <= k; i++ {
			c.nodeMaterial(fmt.Sprintf("n%d", i))
		}
		extra = append(c.nodeMaterial("{node}"), extra...)
	}
	var gossip []string
	for i := 1; i <= k; i++ {
		gossip = append(gossip, fmt.Sprintf("127.0.0.1:%d", c.base+100+i))
	}
	for i := 1; i <= k; i++ {
		name := fmt.Sprintf("n%d", i)
		p := &proc{name: name, data: filepath.Join(c.dir, name), log: filepath.Join(c.dir, name+".log"),
			addr: fmt.Sprintf("127.0.0.1:%d", c.base+i), admin: fmt.Sprintf("127.0.0.1:%d", c.base+200+i)}
		var join []string
		for j, g := range gossip {
			if j != i-1 {
				join = append(join, g)
			}
		}
		p.args = []string{"server", "--name", name, "--data", p.data, "--listen", p.addr,
			"--gossip", gossip[i-1], "--admin", p.admin, "--join", strings.Join(join, ","), "--bootstrap",
			"--log-format", "console", "--log-level", "info", "--gossip-profile", "local", "--rejoin-interval", "1s"}
		for _, a := range extra {
			p.args = append(p.args, strings.ReplaceAll(a, "{node}", name))
		}
		c.nodes = append(c.nodes, p)
		c.start(p)
	}
	t.Cleanup(c.stopAll)
	for _, p := range c.nodes {
		c.waitReady(p)
	}
	c.waitMembers(k)
	c.waitAllUp(k)
	return c
}

// waitAllUp waits until every node takes every one of the k members for
// up as a coordinator does: alive by gossip and not held down by a recent
// failure. A node that dialled a peer still starting holds it down for a
// moment after both are ready, and a coordinator that takes a primary
// for down decides differently (a sloppy quorum, a context clamped
// instead of refused).
func (c *cluster) waitAllUp(k int) {
	c.t.Helper()
	for _, p := range c.nodes {
		require.Eventually(c.t, func() bool {
			cfg := c.clientConfig(p.addr)
			cfg.RingRefreshInterval = time.Hour
			ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
			defer cancel()
			cl, err := client.New(ctx, cfg)
			if err != nil {
				return false
			}
			defer func() { _ = cl.Close() }()
			members := cl.View().Members
			if len(members) != k {
				return false
			}
			for _, m := range members {
				if !m.Alive {
					return false
				}
			}
			return true
		}, 60*time.Second, 200*time.Millisecond, "%s never took every member for up", p.name)
	}
}

// makeCA makes the cluster's CA and user root's client certificate in
// secDir/ca, the clients' certificates directory, and a gossip key.
func (c *cluster) makeCA() {
	c.t.Helper()
	c.secDir = filepath.Join(c.dir, "sec")
	c.certsDir = filepath.Join(c.secDir, "ca")
	require.NoError(c.t, certs.CreateCA(certs.Options{Dir: c.certsDir}))
	require.NoError(c.t, certs.CreateClient(certs.Options{Dir: c.certsDir}, "root"))
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(c.t, err)
	require.NoError(c.t, node.WriteGossipKeyFile(filepath.Join(c.secDir, "gossip.keys"), []string{base64.StdEncoding.EncodeToString(key)}))
	c.env = append(c.env, "CAIRN_CERTS_DIR="+c.certsDir)
}

// nodeMaterial makes node name's certificate and its copy of the gossip
// key in secDir/name (nothing for "{node}", the placeholder), and returns
// the server arguments that use them.
func (c *cluster) nodeMaterial(name string) []string {
	c.t.Helper()
	dir := filepath.Join(c.secDir, name)
	if name != "{node}" {
		require.NoError(c.t, certs.CreateNode(certs.Options{Dir: dir, CADir: c.certsDir}, name, nil))
		raw, err := os.ReadFile(filepath.Join(c.secDir, "gossip.keys"))
		require.NoError(c.t, err)
		require.NoError(c.t, os.WriteFile(filepath.Join(dir, "gossip.keys"), raw, 0o600))
	}
	return []string{"--certs-dir", dir, "--gossip-key-file", filepath.Join(dir, "gossip.keys")}
}

// clientConfig is the SDK configuration of user root for c's nodes.
func (c *cluster) clientConfig(seeds ...string) client.Config {
	c.t.Helper()
	cfg := client.Config{Seeds: seeds}
	if c.certsDir != "" {
		t, err := client.TLSFromCertsDir(c.certsDir, "root")
		require.NoError(c.t, err)
		cfg.TLS = t
	}
	return cfg
}

// seedsOnlyConfig is clientConfig talking to the seeds only.
func (c *cluster) seedsOnlyConfig(seeds ...string) client.Config {
	c.t.Helper()
	cfg := c.clientConfig(seeds...)
	cfg.Routing = client.SeedsOnly
	return cfg
}

// adminToken is the token of an admin user, ops, for the admin ports of
// a secure cluster (added on first use; the one cairn dev keeps when c
// runs under dev); "" when c is insecure.
func (c *cluster) adminToken() string {
	c.t.Helper()
	if c.certsDir == "" {
		return ""
	}
	c.tokenOnce.Do(func() {
		if raw, err := os.ReadFile(filepath.Join(c.certsDir, "console.token")); err == nil {
			c.token = strings.TrimSpace(string(raw))
			return
		}
		var added struct {
			Token string `json:"token"`
		}
		out := c.mustCLI("user", "add", "--addr", c.nodes[0].addr, "ops", "--role", "admin", "--new-token", "-o", "json")
		require.NoError(c.t, json.Unmarshal(out, &added))
		require.NotEmpty(c.t, added.Token)
		// Gossip takes the user to the other nodes.
		for _, p := range c.nodes {
			if !c.running(p) {
				continue
			}
			require.Eventually(c.t, func() bool {
				_, _, err := (&cluster{t: c.t, env: append(slices.Clone(c.env), "CAIRN_TOKEN="+added.Token)}).cli("user", "list", "--addr", p.addr)
				return err == nil
			}, 30*time.Second, 100*time.Millisecond, "%s knows the admin user", p.name)
		}
		c.token = added.Token
	})
	return c.token
}

func (c *cluster) node(name string) *proc {
	for _, p := range c.nodes {
		if p.name == name {
			return p
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

func (c *cluster) start(p *proc) {
	c.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(c.t, err)
	bin := c.bin
	if bin == "" {
		bin = cairnBin
	}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(c.t, p.cmd.Start())
	_ = logf.Close()
	p.exit = make(chan struct{})
	go func(cmd *exec.Cmd, exit chan struct{}) {
		_ = cmd.Wait()
		close(exit)
	}(p.cmd, p.exit)
}

func (c *cluster) running(p *proc) bool {
	select {
	case <-p.exit:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.exit
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop(p *proc) {
	if !c.running(p) {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exit:
	case <-time.After(20 * time.Second):
		c.t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		c.kill(p)
	}
}

func (c *cluster) stopAll() {
	for _, p := range c.nodes {
		c.stop(p)
	}
	if c.t.Failed() {
		for _, p := range c.nodes {
			b, _ := os.ReadFile(p.log)
			c.t.Logf("---- %s log (last 4 KiB) ----\n%s", p.name, tail(b, 4096))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (c *cluster) waitReady(p *proc) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		if !c.running(p) {
			b, _ := os.ReadFile(p.log)
			c.t.Fatalf("%s exited during start:\n%s", p.name, tail(b, 4096))
		}
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "%s not ready", p.name)
}

type member struct {
	Name  string `json:"name"`
	Alive bool   `json:"alive"`
}

// waitMembers waits until every running node lists k members, all alive
// except those given.
func (c *cluster) waitMembers(k int, down ...string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		for _, p := range c.nodes {
			if !c.running(p) || contains(down, p.name) {
				continue
			}
			out, _, err := c.cli("members", "--addr", p.addr, "-o", "json")
			if err != nil {
				return false
			}
			var ms struct{ Members []member }
			if json.Unmarshal(out, &ms) != nil || len(ms.Members) != k {
				return false
			}
			for _, m := range ms.Members {
				if m.Alive == contains(down, m.Name) {
					return false
				}
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond, "members never became %d with down=%v", k, down)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cli runs the cairn binary and returns stdout, stderr and the error (an
// *exec.ExitError for a non-zero exit). A command that does not finish in
// 60s fails the test: nothing the CLI does may hang.
func (c *cluster) cli(args ...string) ([]byte, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Dir = c.cwd
	if c.cwd != "" {
		// What a user's fresh shell in that directory runs: nothing of
		// the CLI's set-up comes from the environment.
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CAIRN_") })
	} else {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		c.t.Fatalf("cairn %s did not finish within 60s", strings.Join(args, " "))
	}
	return stdout.Bytes(), stderr.Bytes(), err
}

// mustCLI runs a command that must succeed.
func (c *cluster) mustCLI(args ...string) []byte {
	c.t.Helper()
	out, errOut, err := c.cli(args...)
	require.NoError(c.t, err, "cairn %s: %s", strings.Join(args, " "), errOut)
	return out
}

type jsonGet struct {
	Found    bool `json:"found"`
	Siblings []struct {
		Value     []byte `json:"value"`
		Tombstone bool   `json:"tombstone"`
	} `json:"siblings"`
	Context string `json:"context"`
}

func (g jsonGet) values() []string {
	var out []string
	for _, s := range g.Siblings {
		out = append(out, string(s.Value))
	}
	return out
}

func (c *cluster) get(addr, bucket, key string, flags ...string) jsonGet {
	c.t.Helper()
	args := append([]string{"get", "--addr", addr, "-o", "json"}, flags...)
	out := c.mustCLI(append(args, bucket, key)...)
	var g jsonGet
	require.NoError(c.t, json.Unmarshal(out, &g), "%s", out)
	return g
}

type replicaCopy struct {
	Node     string `json:"node"`
	Primary  bool   `json:"primary"`
	Found    bool   `json:"found"`
	Error    string `json:"error"`
	Siblings []struct {
		Actor   string `json:"actor"`
		Counter uint64 `json:"counter"`
		Value   []byte `json:"value"`
	} `json:"siblings"`
	Context map[string]uint64 `json:"context"`
}

func (c *cluster) replicas(addr, bucket, key string) []replicaCopy {
	c.t.Helper()
	out := c.mustCLI("debug", "replicas", "--addr", addr, "-o", "json", bucket, key)
	var r struct {
		Replicas []replicaCopy `json:"replicas"`
	}
	require.NoError(c.t, json.Unmarshal(out, &r), "%s", out)
	return r.Replicas
}

// identical reports whether every copy is found and all hold the same
// siblings and context.
func identical(copies []replicaCopy) bool {
	if len(copies) == 0 {
		return false
	}
	first, _ := json.Marshal(struct {
		S any
		C any
	}{copies[0].Siblings, copies[0].Context})
	for _, cp := range copies {
		b, _ := json.Marshal(struct {
			S any
			C any
		}{cp.Siblings, cp.Context})
		if !cp.Found || cp.Error != "" || !bytes.Equal(b, first) {
			return false
		}
	}
	return true
}

type ringInfo struct {
	Partitions int            `json:"partitions"`
	N          int            `json:"n"`
	Members    []string       `json:"members"`
	Owned      map[string]int `json:"owned"`
}

// metric reads one unlabelled sample from a node's /metrics.
func (c *cluster) metric(admin, name string) float64 {
	c.t.Helper()
	return c.metricAs(admin, c.adminToken(), name)
}

// metricAs is metric with the given admin user's token.
func (c *cluster) metricAs(admin, token, name string) float64 {
	c.t.Helper()
	body, err := c.adminGet(admin, "/metrics", token)
	require.NoError(c.t, err)
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(c.t, err)
			return v
		}
	}
	c.t.Fatalf("metric %s not found on %s", name, admin)
	return 0
}

// metrics returns a node's whole /metrics page.
func (c *cluster) metrics(admin string) (string, error) {
	return c.adminGet(admin, "/metrics", c.adminToken())
}

// adminHTTP is the client of c's admin ports and their scheme: https,
// verified with the cluster's CA, when c is secure.
func (c *cluster) adminHTTP() (*http.Client, string) {
	if c.certsDir == "" {
		return http.DefaultClient, "http://"
	}
	caOnly, err := client.TLSFromCA(c.certsDir)
	require.NoError(c.t, err)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: caOnly, DisableKeepAlives: true}}, "https://"
}

// adminGet GETs path from a node's admin port, with token when set, and
// returns the body of a 200 answer.
func (c *cluster) adminGet(admin, path, token string) (string, error) {
	hc, scheme := c.adminHTTP()
	req, err := http.NewRequest(http.MethodGet, scheme+admin+path, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s of %s: %s: %s", path, admin, resp.Status, body)
	}
	return string(body), nil
}
