package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/stretchr/testify/require"
)

// A connection's identity is settled at its handshake, but its user's
// record is read at every request: a revoked role, a replaced token or a
// removed user is refused on a connection already open, and a grant is
// honoured at once.
func TestRolesApplyToConnectionsAlreadyOpen(t *testing.T) {
	tc, caDir := tlsCluster(t, 1)
	addr := tc.nodes["n1"].Addr()
	root := tlsClient(t, caDir, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	require.NoError(t, certs.CreateClient(certs.Options{Dir: caDir}, "alice"))
	_, err := root.AddUser(ctx, "alice", []string{"write"}, false)
	require.NoError(t, err)
	token, err := root.AddUser(ctx, "app", []string{"write"}, true)
	require.NoError(t, err)

	dial := func(user, token string) *client.Client {
		cfg, err := client.TLSFromCertsDir(caDir, user)
		require.NoError(t, err)
		c, err := client.New(ctx, client.Config{Seeds: []string{addr}, TLS: cfg, Token: token, Routing: client.SeedsOnly})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	alice := dial("alice", "")
	app := dial("root", token) // a token wins over the certificate: this is app, not root

	_, err = alice.Put(ctx, "b", []byte("k"), []byte("v"))
	require.NoError(t, err)
	_, err = app.Put(ctx, "b", []byte("k"), []byte("v"))
	require.NoError(t, err)
	_, err = app.Users(ctx)
	require.ErrorIs(t, err, cairn.ErrUnauthorized, "app is not root, whatever certificate it holds")
	require.ErrorContains(t, err, "user app lacks role admin")

	_, err = root.RevokeRoles(ctx, "alice", "write")
	require.NoError(t, err)
	_, err = alice.Put(ctx, "b", []byte("k"), []byte("v"))
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.ErrorContains(t, err, "user alice lacks role write")
	_, err = alice.Get(ctx, "b", []byte("k"))
	require.ErrorContains(t, err, "user alice lacks role read", "no role left")
	_, err = root.GrantRoles(ctx, "alice", "read")
	require.NoError(t, err)
	_, err = alice.Get(ctx, "b", []byte("k"))
	require.NoError(t, err)
	_, err = alice.Delete(ctx, "b", []byte("k"))
	require.ErrorContains(t, err, "user alice lacks role write")

	_, err = root.NewUserToken(ctx, "app")
	require.NoError(t, err)
	_, err = app.Get(ctx, "b", []byte("k"))
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.ErrorContains(t, err, "token was replaced")

	require.NoError(t, root.RemoveUser(ctx, "alice"))
	_, err = alice.Get(ctx, "b", []byte("k"))
	require.ErrorContains(t, err, "user alice is not a user of this cluster")

	us, err := root.Users(ctx)
	require.NoError(t, err)
	require.Equal(t, []client.User{{Name: "app", Roles: []string{"write"}, Token: true}}, us)
}

// Bad user requests are refused with a clear error and change nothing.
func TestUserRequestsRefuseBadInput(t *testing.T) {
	tc, caDir := tlsCluster(t, 1)
	root := tlsClient(t, caDir, tc.nodes["n1"].Addr())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := root.AddUser(ctx, "bob", []string{"read"}, false)
	require.NoError(t, err)
	gen := tc.nodes["n1"].members.MetaGeneration()
	for name, call := range map[string]func() error{
		"bad name":    func() error { _, err := root.AddUser(ctx, "-x", nil, false); return err },
		"bad role":    func() error { _, err := root.AddUser(ctx, "eve", []string{"god"}, false); return err },
		"exists":      func() error { _, err := root.AddUser(ctx, "bob", nil, false); return err },
		"grant none":  func() error { _, err := root.GrantRoles(ctx, "bob"); return err },
		"grant bad":   func() error { _, err := root.GrantRoles(ctx, "bob", "superuser"); return err },
		"no such":     func() error { _, err := root.GrantRoles(ctx, "nobody", "read"); return err },
		"remove none": func() error { return root.RemoveUser(ctx, "nobody") },
	} {
		err := call()
		require.Error(t, err, name)
		require.True(t, errorsIsAny(err, cairn.ErrInvalidArgument, cairn.ErrNotFound), "%s: %v", name, err)
	}
	require.Equal(t, gen, tc.nodes["n1"].members.MetaGeneration(), "nothing changed")
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// With TokenOnlyClients a client without a certificate is let through TLS,
// and must then present a token that is a user's: without one it is
// refused at the handshake, saying what to present.
func TestTokenOnlyClients(t *testing.T) {
	caDir := t.TempDir()
	require.NoError(t, certs.CreateCA(certs.Options{Dir: caDir}))
	require.NoError(t, certs.CreateClient(certs.Options{Dir: caDir}, "root"))
	tc := startCluster(t, 1, func(c *Config) {
		c.CertsDir = filepath.Join(t.TempDir(), c.Name)
		c.TokenOnlyClients = true
		require.NoError(t, certs.CreateNode(certs.Options{Dir: c.CertsDir, CADir: caDir}, c.Name, nil))
	})
	addr := tc.nodes["n1"].Addr()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	token, err := tlsClient(t, caDir, addr).AddUser(ctx, "app", []string{"read"}, true)
	require.NoError(t, err)

	caOnly, err := client.TLSFromCA(caDir)
	require.NoError(t, err)
	_, err = client.New(ctx, client.Config{Seeds: []string{addr}, TLS: caOnly, Routing: client.SeedsOnly})
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.ErrorContains(t, err, "present a client certificate")

	c, err := client.New(ctx, client.Config{Seeds: []string{addr}, TLS: caOnly, Token: token, Routing: client.SeedsOnly})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Get(ctx, "b", []byte("k"))
	require.NoError(t, err)
	_, err = c.Put(ctx, "b", []byte("k"), []byte("v"))
	require.ErrorContains(t, err, "user app lacks role write")
}
