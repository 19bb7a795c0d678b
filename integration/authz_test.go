package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRolesAreEnforced: on a secure cluster, root (the bootstrap admin)
// adds users; a read user cannot put, a write user cannot remove a member
// or change a bucket, a user with no role is refused everything, a
// removed user is refused, and each refusal names the missing role. Users added through one node
// hold on every node.
func TestRolesAreEnforced(t *testing.T) {
	c, _ := startSecureCluster(t, 3)
	n1, n3 := c.node("n1"), c.node("n3")
	caDir := strings.TrimPrefix(c.env[0], "CAIRN_CERTS_DIR=")
	c.mustCLI("put", "--addr", n1.addr, "--w", "all", "b", "k", "v")

	for _, u := range []string{"reader", "writer", "nobody"} {
		c.mustCLI("cert", "create-client", "--certs-dir", caDir, u)
	}
	c.mustCLI("user", "add", "--addr", n1.addr, "reader", "--role", "read")
	c.mustCLI("user", "add", "--addr", n1.addr, "writer", "--role", "write")
	c.mustCLI("user", "add", "--addr", n1.addr, "nobody")

	var list struct {
		Users []struct {
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
			Token bool     `json:"token"`
		} `json:"users"`
	}
	// Gossip carries the users to n3: ask it.
	require.Eventually(t, func() bool {
		out, _, err := c.cli("user", "list", "--addr", n3.addr, "-o", "json")
		return err == nil && json.Unmarshal(out, &list) == nil && len(list.Users) == 3
	}, 30*time.Second, 100*time.Millisecond, "n3 learns the users n1 added")
	require.Equal(t, "nobody", list.Users[0].Name)
	require.Empty(t, list.Users[0].Roles)
	require.Equal(t, []string{"read"}, list.Users[1].Roles)
	require.Equal(t, []string{"write"}, list.Users[2].Roles)

	as := func(user string, args ...string) (string, error) {
		out, errOut, err := c.cli(append(args, "--user", user)...)
		return string(out) + string(errOut), err
	}
	refused := func(out string, err error, want string) {
		t.Helper()
		require.Error(t, err, out)
		require.Contains(t, out, "unauthorized")
		require.Contains(t, out, want)
	}

	// read: get yes, put no.
	out, err := as("reader", "get", "--addr", n3.addr, "b", "k")
	require.NoError(t, err, out)
	require.Contains(t, out, "v")
	out, err = as("reader", "put", "--addr", n3.addr, "b", "k", "w")
	refused(out, err, "user reader lacks role write")

	// write: put yes, remove a member no, change a bucket no (reading its
	// properties yes), user management no.
	out, err = as("writer", "put", "--addr", n3.addr, "b", "k2", "w")
	require.NoError(t, err, out)
	out, err = as("writer", "remove", "--addr", n3.addr, "--force", "n2")
	refused(out, err, "user writer lacks role admin")
	out, err = as("writer", "bucket", "create", "--addr", n3.addr, "ledger", "--w", "3")
	refused(out, err, "user writer lacks role admin")
	c.mustCLI("bucket", "create", "--addr", n3.addr, "ledger", "--w", "2")
	out, err = as("writer", "bucket", "set", "--addr", n3.addr, "ledger", "--w", "3")
	refused(out, err, "user writer lacks role admin")
	out, err = as("writer", "bucket", "get", "--addr", n3.addr, "ledger")
	require.NoError(t, err, out)
	out, err = as("writer", "user", "add", "--addr", n3.addr, "mallory", "--role", "admin")
	refused(out, err, "user writer lacks role admin")

	// no role: nothing, not even a get.
	out, err = as("nobody", "get", "--addr", n1.addr, "b", "k")
	refused(out, err, "user nobody lacks role read")

	// A certificate of the CA whose user was never added.
	c.mustCLI("cert", "create-client", "--certs-dir", caDir, "stranger")
	out, err = as("stranger", "get", "--addr", n1.addr, "b", "k")
	refused(out, err, "user stranger is not a user of this cluster")

	// A grant takes effect at once on the node that made it.
	c.mustCLI("user", "grant", "--addr", n1.addr, "reader", "write")
	out, err = as("reader", "put", "--addr", n1.addr, "b", "k3", "x")
	require.NoError(t, err, out)
	// A removed user is refused from its next request.
	c.mustCLI("user", "remove", "--addr", n1.addr, "writer")
	out, err = as("writer", "put", "--addr", n1.addr, "b", "k4", "x")
	refused(out, err, "user writer is not a user of this cluster")

	// Every member is still there: nothing refused changed anything.
	var ms struct {
		Members []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"members"`
	}
	require.NoError(t, json.Unmarshal(c.mustCLI("members", "--addr", n1.addr, "-o", "json"), &ms))
	require.Len(t, ms.Members, 3)
	for _, m := range ms.Members {
		require.Equal(t, "active", m.Status, m.Name)
	}

	// Every node restarts: the users come back from each node's disk.
	c.stopAll()
	for _, p := range c.nodes {
		c.start(p)
	}
	for _, p := range c.nodes {
		c.waitReady(p)
	}
	out, err = as("reader", "put", "--addr", n3.addr, "b", "k5", "x")
	require.NoError(t, err, "reader kept the write role it was granted: %s", out)
	out, err = as("nobody", "get", "--addr", n3.addr, "b", "k")
	refused(out, err, "user nobody lacks role read")
	out, err = as("writer", "get", "--addr", n3.addr, "b", "k")
	refused(out, err, "user writer is not a user of this cluster")
}

// TestTokens: a token made by `user add --new-token` is shown once and
// acts as its user; on a node started with --token-only-clients it works
// with the CA alone (no client certificate); a wrong or replaced token is
// refused; and a node without that flag refuses a client without a
// certificate whatever token it brings.
func TestTokens(t *testing.T) {
	c, _ := startSecureCluster(t, 3, "--token-only-clients")
	n1, n2 := c.node("n1"), c.node("n2")
	caDir := strings.TrimPrefix(c.env[0], "CAIRN_CERTS_DIR=")

	var added struct {
		User struct {
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
			Token bool     `json:"token"`
		} `json:"user"`
		Token string `json:"token"`
	}
	require.NoError(t, json.Unmarshal(c.mustCLI("user", "add", "--addr", n1.addr, "app", "--role", "write", "--new-token", "-o", "json"), &added))
	require.True(t, added.User.Token)
	require.True(t, strings.HasPrefix(added.Token, "cairn_"), added.Token)

	// A directory with the CA only: no client certificate to present.
	caOnly := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(caDir, "ca.crt"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(caOnly, "ca.crt"), raw, 0o644))
	app := &cluster{t: t, env: []string{"CAIRN_CERTS_DIR=" + caOnly, "CAIRN_TOKEN=" + added.Token}}
	require.Eventually(t, func() bool {
		_, _, err := app.cli("put", "--addr", n2.addr, "b", "k", "v")
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "the token works on n2 once gossip brought the user")
	require.Equal(t, []string{"v"}, app.get(n2.addr, "b", "k").values())
	_, errOut, err := app.cli("user", "list", "--addr", n2.addr)
	require.Error(t, err)
	require.Contains(t, string(errOut), "user app lacks role admin")

	// The token is never in a node's log.
	for _, p := range c.nodes {
		log, err := os.ReadFile(p.log)
		require.NoError(t, err)
		require.NotContains(t, string(log), added.Token)
	}

	// A token that is no user's is refused at the handshake.
	bogus := &cluster{t: t, env: []string{"CAIRN_CERTS_DIR=" + caOnly, "CAIRN_TOKEN=cairn_nope"}}
	_, errOut, err = bogus.cli("get", "--addr", n1.addr, "b", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "the token matches no user")
	require.NotContains(t, string(errOut), "cairn_nope")

	// A new token replaces the old one.
	var renewed struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.Unmarshal(c.mustCLI("user", "token", "--addr", n1.addr, "app", "-o", "json"), &renewed))
	_, errOut, err = app.cli("get", "--addr", n1.addr, "b", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "the token matches no user")
	fresh := &cluster{t: t, env: []string{"CAIRN_CERTS_DIR=" + caOnly}}
	fresh.mustCLI("get", "--addr", n1.addr, "--token", renewed.Token, "b", "k")

	// A node without --token-only-clients wants a certificate first.
	strict, _ := startSecureCluster(t, 1)
	caStrict := t.TempDir()
	raw, err = os.ReadFile(filepath.Join(strings.TrimPrefix(strict.env[0], "CAIRN_CERTS_DIR="), "ca.crt"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(caStrict, "ca.crt"), raw, 0o644))
	strictApp := &cluster{t: t, env: []string{"CAIRN_CERTS_DIR=" + caStrict}}
	_, errOut, err = strictApp.cli("get", "--addr", strict.node("n1").addr, "--token", renewed.Token, "b", "k")
	require.Error(t, err)
	require.Contains(t, string(errOut), "certificate required")
}

// TestAdminPortWantsAnAdminToken: on a secure cluster /healthz and /readyz
// answer anyone, over plain HTTP or TLS; everything else is served over
// TLS only (plain requests are redirected); /metrics, pprof and the
// console want an admin user's
// token (bearer, or the password of basic authentication), refuse a
// writer's naming the role, and the console gathers every member's report
// with the caller's credential.
func TestAdminPortWantsAnAdminToken(t *testing.T) {
	c, _ := startSecureCluster(t, 3)
	ops := c.adminToken()
	var w struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.Unmarshal(c.mustCLI("user", "add", "--addr", c.nodes[0].addr, "app", "--role", "write", "--new-token", "-o", "json"), &w))
	admin := c.node("n2").admin

	hc, scheme := c.adminHTTP()
	require.Equal(t, "https://", scheme, "a secure node's admin port speaks TLS")
	get := func(path string, auth func(*http.Request)) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, scheme+admin+path, nil)
		require.NoError(t, err)
		if auth != nil {
			auth(req)
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body), resp.Header
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}

	// Plain HTTP: the probes answer, the rest is sent to https, so that
	// no token crosses the network in the clear.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		resp, err := noFollow.Get("http://" + admin + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		if path == "/healthz" || path == "/readyz" {
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			continue
		}
		require.Equal(t, http.StatusPermanentRedirect, resp.StatusCode, path)
		require.Equal(t, "https://"+admin+path, resp.Header.Get("Location"))
	}
	for _, open := range []string{"/healthz", "/readyz"} {
		code, _, _ := get(open, nil)
		require.Equal(t, http.StatusOK, code, open)
	}
	for _, closed := range []string{"/metrics", "/debug/pprof/", "/", "/api/v1/cluster"} {
		code, body, h := get(closed, nil)
		require.Equal(t, http.StatusUnauthorized, code, closed)
		require.Contains(t, body, "admin user's token", closed)
		require.Contains(t, h.Get("WWW-Authenticate"), "Basic")
	}
	code, body, _ := get("/metrics", bearer("cairn_nope"))
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, "matches no user")
	require.Eventually(t, func() bool {
		code, body, _ = get("/metrics", bearer(w.Token))
		return code == http.StatusForbidden
	}, 30*time.Second, 100*time.Millisecond, "n2 learns app's token")
	require.Contains(t, body, "user app lacks role admin")

	code, body, _ = get("/metrics", bearer(ops))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "cairn_")
	code, _, _ = get("/metrics", func(r *http.Request) { r.SetBasicAuth("anyone", ops) })
	require.Equal(t, http.StatusOK, code, "a browser's basic authentication, the token as password")

	// The console asks n1 and n3 with the same credential: all answer.
	code, body, _ = get("/api/v1/cluster", bearer(ops))
	require.Equal(t, http.StatusOK, code)
	var rep struct {
		Members []struct {
			Name     string `json:"name"`
			Answered bool   `json:"answered"`
		} `json:"members"`
		Unanswered map[string]string `json:"unanswered"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	require.Empty(t, rep.Unanswered)
	require.Len(t, rep.Members, 3)
	for _, m := range rep.Members {
		require.True(t, m.Answered, m.Name)
	}
}
