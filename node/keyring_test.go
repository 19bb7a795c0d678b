package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/faultnet"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

func newGossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(k)
}

// keyedCluster starts k nodes whose gossip is encrypted with key, each
// with its own key file.
func keyedCluster(t *testing.T, k int, key string) *testCluster {
	t.Helper()
	return startCluster(t, k, func(c *Config) {
		c.GossipKeyFile = filepath.Join(t.TempDir(), c.Name+".keys")
		require.NoError(t, WriteGossipKeyFile(c.GossipKeyFile, []string{key}))
	})
}

func readKeyFile(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var keys []string
	require.NoError(t, json.Unmarshal(raw, &keys))
	return keys
}

func TestGossipKeyOutsiderNeverJoins(t *testing.T) {
	tc := keyedCluster(t, 2, newGossipKey(t))
	cfg := DefaultConfig()
	cfg.Name = "intruder"
	cfg.DataDir = t.TempDir()
	cfg.Listen, cfg.Gossip, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.RejoinInterval = 100 * time.Millisecond
	cfg.tuneMemberlist = faultnet.FastTimings
	cfg.Logger = zaptest.NewLogger(t).Named("intruder")
	cfg.GossipKeyFile = filepath.Join(t.TempDir(), "keys")
	require.NoError(t, WriteGossipKeyFile(cfg.GossipKeyFile, []string{newGossipKey(t)}))
	cfg.Join = []string{tc.nodes["n1"].GossipAddr()}
	intruder, err := Start(t.Context(), cfg)
	require.NoError(t, err, "a node with the wrong key starts, alone")
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, intruder.Shutdown(ctx))
	}()
	// Several of its rejoin attempts go by.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, name := range tc.names {
			for _, m := range tc.nodes[name].members.Members() {
				require.NotEqual(t, "intruder", m.Name, "%s lists the intruder", name)
			}
		}
		require.Len(t, intruder.members.Members(), 1, "the intruder sees nobody")
		time.Sleep(50 * time.Millisecond)
	}

	// Without any key at all it does not get in either.
	cfg.GossipKeyFile, cfg.Name, cfg.DataDir = "", "plain", t.TempDir()
	plain, err := Start(t.Context(), cfg)
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, plain.Shutdown(ctx))
	}()
	time.Sleep(time.Second)
	require.Len(t, tc.nodes["n1"].members.Members(), 2)
}

// TestGossipKeyRotatesUnderLoad installs, uses and removes keys on a live
// cluster while a client writes to every replica: no write fails, nobody
// is taken for dead, every key file ends with only the new key, and a node
// restarted from its file rejoins.
func TestGossipKeyRotatesUnderLoad(t *testing.T) {
	oldKey, newKey := newGossipKey(t), newGossipKey(t)
	tc := keyedCluster(t, 3, oldKey)
	c := tc.client("n1")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	w := startWriter(ctx, c)
	step := func(op, key string, wantKeys int, wantPrimary string) {
		t.Helper()
		nodes, err := c.Keyring(ctx, op, key)
		require.NoError(t, err, op)
		require.Len(t, nodes, 3)
		for _, n := range nodes {
			require.Len(t, n.Keys, wantKeys, "%s after %s", n.Node, op)
			require.Equal(t, wantPrimary, n.Primary, "%s after %s", n.Node, op)
		}
		w.waitOK(t, 10)
		tc.waitAlive(tc.names...)
	}
	step("install", newKey, 2, oldKey)
	step("install", newKey, 2, oldKey) // repeating a step is harmless
	step("use", newKey, 2, newKey)
	// Gossip goes on with the new key before the old one goes.
	time.Sleep(500 * time.Millisecond)
	step("remove", oldKey, 1, newKey)
	ok, failed, first := w.stop()
	if first != nil {
		t.Fatalf("%d of %d writes failed during the rotation; first: %v", failed, failed+ok, first)
	}
	for _, name := range tc.names {
		require.Equal(t, []string{newKey}, readKeyFile(t, tc.cfgs[name].GossipKeyFile), name)
	}
	_, err := c.Keyring(ctx, "remove", newKey)
	require.ErrorContains(t, err, "the one in use")
	_, err = c.Keyring(ctx, "use", newGossipKey(t))
	require.ErrorContains(t, err, "not installed")

	tc.stop("n3")
	tc.waitDead("n3")
	tc.restart("n3")
	tc.waitAlive(tc.names...)
}
