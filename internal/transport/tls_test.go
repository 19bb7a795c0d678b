package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/stretchr/testify/require"
)

// tlsMaterial makes a CA with node n1 and user root in a fresh directory.
func tlsMaterial(t testing.TB) (node, user *certs.Source) {
	t.Helper()
	o := certs.Options{Dir: t.TempDir()}
	require.NoError(t, certs.CreateCA(o))
	require.NoError(t, certs.CreateNode(o, "n1", nil))
	require.NoError(t, certs.CreateClient(o, "root"))
	node, err := certs.LoadNode(o.Dir, "n1")
	require.NoError(t, err)
	user, err = certs.LoadClient(o.Dir, "root")
	require.NoError(t, err)
	return node, user
}

func TestTLSCallsCarryTheCertificateAndBatchesStillFlow(t *testing.T) {
	node, user := tlsMaterial(t)
	var seen sync.Map
	ts := startServer(t, func(c *Config) {
		c.ServerTLS = node.ServerConfig()
		c.VerifyPeer = func(_ context.Context, name string, _ net.Addr, cert *x509.Certificate) error {
			id, _ := certs.IdentityOf(cert)
			seen.Store(name, id)
			return nil
		}
	})
	clients := newPool(t, func(c *Config) { c.ClientTLS = user.ClientConfig })
	peers := newPool(t, func(c *Config) { c.Node = "n1"; c.ClientTLS = node.ClientConfig })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := get(ctx, clients, ts.addr(), "k")
	require.NoError(t, err)
	require.Equal(t, "b/k", v)
	_, err = get(ctx, peers, ts.addr(), "k")
	require.NoError(t, err)
	id, ok := seen.Load("n1")
	require.True(t, ok, "VerifyPeer saw the peer's hello")
	require.Equal(t, certs.Identity{Kind: certs.KindNode, Name: "n1"}, id, "and the certificate it proved")

	// Many calls at once: the writer gathers frames for one TLS write.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "big:" + strconv.Itoa(1+i*977%70000)
			if _, err := get(ctx, clients, ts.addr(), key); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestTLSMismatchesSayWhy(t *testing.T) {
	node, user := tlsMaterial(t)
	secure := startServer(t, func(c *Config) { c.ServerTLS = node.ServerConfig() })
	plain := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Plain text to a TLS node: the node answers in plain text why.
	_, err := get(ctx, newPool(t, nil), secure.addr(), "k")
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.ErrorContains(t, err, "accepts only TLS")
	e := secure.waitEvent(t, EventTLSFailed)
	require.ErrorContains(t, e.Err, "does not speak TLS")

	// TLS to a plain node.
	_, err = get(ctx, newPool(t, func(c *Config) { c.ClientTLS = user.ClientConfig }), plain.addr(), "k")
	require.ErrorIs(t, err, cairn.ErrProtocol)
	require.ErrorContains(t, err, "does not speak TLS")

	// A client of another CA: refused, and the node says so once.
	_, stranger := tlsMaterial(t)
	_, err = get(ctx, newPool(t, func(c *Config) { c.ClientTLS = stranger.ClientConfig }), secure.addr(), "k")
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.ErrorContains(t, err, "TLS handshake")
	secure.waitEvent(t, EventTLSFailed)

	// A client without a certificate.
	_, err = get(ctx, newPool(t, func(c *Config) {
		c.ClientTLS = func(addr string) (*tls.Config, error) {
			cfg, err := user.ClientConfig(addr)
			cfg.GetClientCertificate = nil
			return cfg, err
		}
	}), secure.addr(), "k")
	require.Error(t, err)
	secure.waitEvent(t, EventTLSFailed)
	require.Zero(t, secure.h.calls.Load(), "nothing was served to any of them")
}

func TestTLSHandshakeOfASilentSocketEndsInTime(t *testing.T) {
	node, _ := tlsMaterial(t)
	ts := startServer(t, func(c *Config) {
		c.ServerTLS = node.ServerConfig()
		c.HandshakeTimeout = 200 * time.Millisecond
	})
	c, err := net.Dial("tcp", ts.addr())
	require.NoError(t, err)
	defer c.Close()
	e := ts.waitEvent(t, EventTLSFailed)
	require.Error(t, e.Err)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "the node closed the silent socket")
}
