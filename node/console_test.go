package node

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/access"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/node/console"
	"github.com/stretchr/testify/require"
)

func getJSON(t *testing.T, u string, into any) int {
	t.Helper()
	return getJSONAs(t, "", u, into)
}

// getJSONAs is getJSON with a bearer token, for a secure node.
func getJSONAs(t *testing.T, token, u string, into any) int {
	t.Helper()
	return getJSONWith(t, http.DefaultClient, token, u, into)
}

// getJSONWith is getJSONAs through hc.
func getJSONWith(t *testing.T, hc *http.Client, token, u string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if into != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, into), "%s", body)
	}
	return resp.StatusCode
}

// TestConsoleShowsTheWholeClusterFromAnyNode: three in-process nodes with
// admin ports. Each node's console gathers the others through their admin
// ports; a stopped node is named as not answering, and the key inspector
// shows what `cairn debug replicas` shows.
func TestConsoleShowsTheWholeClusterFromAnyNode(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.Admin = "127.0.0.1:0" })
	admin := func(name string) string { return "http://" + tc.nodes[name].AdminAddr() }

	for _, name := range tc.names {
		var rep console.ClusterReport
		require.Equal(t, http.StatusOK, getJSON(t, admin(name)+"/api/v1/cluster", &rep))
		require.Equal(t, name, rep.Via)
		require.Len(t, rep.Members, 3)
		for _, m := range rep.Members {
			require.True(t, m.Answered, "%s via %s: %s", m.Name, name, m.Error)
			require.True(t, m.Alive)
			require.Equal(t, tc.nodes[m.Name].AdminAddr(), m.Admin)
		}
		require.Len(t, rep.AAE.Grid, rep.Ring.Partitions)
	}

	c := tc.client("n1")
	_, err := c.Put(t.Context(), "b", []byte("k"), []byte("one"))
	require.NoError(t, err)
	_, err = c.Put(t.Context(), "b", []byte("k"), []byte("two"))
	require.NoError(t, err)
	// W=2 answers before the third copy lands: a replica behind the others
	// is named as differing until it catches up.
	var key console.KeyReport
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		key = console.KeyReport{}
		require.Equal(t, http.StatusOK, getJSON(t, admin("n2")+"/api/v1/key?bucket=b&key=k", &key))
		require.Len(t, key.Replicas, 3)
		behind := 0
		for _, r := range key.Replicas {
			if len(r.Siblings) != 2 {
				behind++
				require.Contains(t, key.Differing, r.Node)
			}
		}
		if behind == 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "the key inspector never showed two siblings on every replica: %+v", key)
	}
	require.Empty(t, key.Differing)
	long := url.QueryEscape(strings.Repeat("k", tc.cfgs["n1"].MaxKeySize+1))
	require.Equal(t, http.StatusBadRequest, getJSON(t, admin("n1")+"/api/v1/key?bucket=b&key="+long, nil), "a key past the node's limit is refused")

	// The puts show in the history, sampled once a second.
	require.Eventually(t, func() bool {
		var rep console.ClusterReport
		if resp, err := http.Get(admin("n3") + "/api/v1/cluster"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&rep)
			_ = resp.Body.Close()
		}
		var puts uint64
		for _, n := range rep.Series.Ops["put"].Rate {
			puts += n
		}
		return puts >= 2
	}, 10*time.Second, 100*time.Millisecond, "the puts never showed in the series")

	tc.stop("n3")
	var rep console.ClusterReport
	require.Equal(t, http.StatusOK, getJSON(t, admin("n1")+"/api/v1/cluster", &rep))
	require.Contains(t, rep.Unanswered, "n3")
	for _, m := range rep.Members {
		require.Equal(t, m.Name != "n3", m.Answered, "%s", m.Name)
	}
}

// TestConsoleGathersATLSCluster: with the data port on TLS, the admin port
// serves its probes over plain HTTP and TLS, and everything else over TLS
// only; a member's admin address is still asked of it over the (now
// mutually authenticated) peer connection, and the console gathers every
// member over https, asking each with the credential it was asked with:
// an admin user's token, without which the port refuses.
func TestConsoleGathersATLSCluster(t *testing.T) {
	caDir := t.TempDir()
	require.NoError(t, certs.CreateCA(certs.Options{Dir: caDir}))
	tc := startCluster(t, 3, func(c *Config) {
		c.Admin = "127.0.0.1:0"
		c.CertsDir = filepath.Join(t.TempDir(), c.Name)
		require.NoError(t, certs.CreateNode(certs.Options{Dir: c.CertsDir, CADir: caDir}, c.Name, nil))
	})
	// The admin port speaks TLS with the node's certificate; a plain
	// request for anything but the probes is sent there.
	addr := tc.nodes["n2"].AdminAddr()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + addr + "/api/v1/cluster")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusPermanentRedirect, resp.StatusCode)
	require.Equal(t, "https://"+addr+"/api/v1/cluster", resp.Header.Get("Location"))
	require.Equal(t, http.StatusOK, getJSON(t, "http://"+addr+"/readyz", nil), "a probe needs no TLS")
	caOnly, err := certs.CAOnlyClientConfig(caDir)
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: caOnly}}
	defer hc.CloseIdleConnections()
	require.Equal(t, http.StatusOK, getJSONWith(t, hc, "", "https://"+addr+"/readyz", nil))

	at := "https://" + addr + "/api/v1/cluster"
	require.Equal(t, http.StatusUnauthorized, getJSONWith(t, hc, "", at, nil))
	token, hash, err := access.NewToken(rand.Reader)
	require.NoError(t, err)
	ops := access.User{Name: "ops", Roles: []access.Role{access.RoleAdmin}, TokenHash: hash}
	require.NoError(t, tc.nodes["n2"].members.SetMeta(access.MetaPrefix, "ops", ops.Encode()))
	for _, n := range tc.nodes {
		require.Eventually(t, func() bool {
			_, ok := n.users().users["ops"]
			return ok
		}, 10*time.Second, 20*time.Millisecond, "%s learns the user", n.cfg.Name)
	}
	var rep console.ClusterReport
	require.Equal(t, http.StatusOK, getJSONWith(t, hc, token, at, &rep))
	require.Empty(t, rep.Unanswered, "n2 gathers every member over https")
	for _, m := range rep.Members {
		require.True(t, m.Answered, "%s: %s", m.Name, m.Error)
	}
}

// TestConsoleShowsATransferInFlight: while a node joins, the console of
// any member shows the change and the partition streams toward it, as
// `cairn transfers` reports them.
func TestConsoleShowsATransferInFlight(t *testing.T) {
	slow := func(c *Config) {
		smallRing(c)
		c.Admin = "127.0.0.1:0"
		c.Transfer.Settle = 0
		// Slow enough that the change is still in flight when looked at.
		c.Transfer.BytesPerSecond = 4 << 10
		c.Transfer.BatchKeys = 4
	}
	tc := startCluster(t, 3, slow)
	c := tc.client("n1")
	for i := range 200 {
		_, err := c.Put(t.Context(), "b", fmt.Appendf(nil, "k%d", i), []byte("some value of a few bytes"), client.W(client.All))
		require.NoError(t, err)
	}
	tc.join("n4", slow)
	admin := "http://" + tc.nodes["n2"].AdminAddr()
	var rep console.ClusterReport
	require.Eventually(t, func() bool {
		rep = console.ClusterReport{}
		if getJSON(t, admin+"/api/v1/cluster", &rep) != http.StatusOK || !rep.Transfers.Changing {
			return false
		}
		for _, s := range rep.Transfers.Streams {
			if s.To == "n4" && s.State == "streaming" {
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "the console never showed a stream to n4: %+v", rep.Transfers)
	require.Contains(t, rep.Transfers.Next, "n4")
	require.NotContains(t, rep.Transfers.Members, "n4", "n4 owns nothing before its partitions flip")
	require.Positive(t, rep.Transfers.Moving)
}
