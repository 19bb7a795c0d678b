package node

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// tlsCluster starts k nodes that speak only TLS, each with its own
// certificates directory signed by one CA; caDir also holds user root's
// client certificate.
func tlsCluster(t *testing.T, k int) (tc *testCluster, caDir string) {
	t.Helper()
	caDir = t.TempDir()
	require.NoError(t, certs.CreateCA(certs.Options{Dir: caDir}))
	require.NoError(t, certs.CreateClient(certs.Options{Dir: caDir}, "root"))
	tc = startCluster(t, k, func(c *Config) {
		c.CertsDir = filepath.Join(t.TempDir(), c.Name)
		require.NoError(t, certs.CreateNode(certs.Options{Dir: c.CertsDir, CADir: caDir}, c.Name, nil))
	})
	return tc, caDir
}

func tlsClient(t *testing.T, caDir, addr string) *client.Client {
	t.Helper()
	cfg, err := client.TLSFromCertsDir(caDir, "root")
	require.NoError(t, err)
	c, err := client.New(t.Context(), client.Config{Seeds: []string{addr}, TLS: cfg, Routing: client.SeedsOnly})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestTLSClusterServesQuorumsAndRefusesPlainClients(t *testing.T) {
	tc, caDir := tlsCluster(t, 3)
	c := tlsClient(t, caDir, tc.nodes["n1"].Addr())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		_, err := c.Put(ctx, "b", fmt.Appendf(nil, "k%d", i), []byte("v"), client.W(3))
		require.NoError(t, err, "every replica reached over TLS")
	}
	obj, err := tlsClient(t, caDir, tc.nodes["n3"].Addr()).Get(ctx, "b", []byte("k7"), client.R(3))
	require.NoError(t, err)
	require.True(t, obj.Found)

	_, err = client.New(ctx, client.Config{Seeds: []string{tc.nodes["n1"].Addr()}, Routing: client.SeedsOnly})
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.ErrorContains(t, err, "accepts only TLS")
}

// TestTLSPeerMustBeWhoItsCertificateSays: a node's certificate proves its
// name; naming another member in the hello is refused, whatever address
// the connection comes from.
func TestTLSPeerMustBeWhoItsCertificateSays(t *testing.T) {
	tc, _ := tlsCluster(t, 2)
	n2, err := certs.LoadNode(tc.cfgs["n2"].CertsDir, "n2")
	require.NoError(t, err)
	cfg := transport.DefaultConfig()
	cfg.Node = "n1" // n2's certificate, n1's name
	cfg.ClientTLS = n2.ClientConfig
	p := transport.NewPool(cfg)
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var resp wire.StatusResp
	err = p.Call(ctx, tc.nodes["n2"].Addr(), wire.TypeStatus, nil, &resp)
	require.ErrorIs(t, err, cairn.ErrUnauthorized)
	require.ErrorContains(t, err, "not node n1's")

	cfg.Node = "n2" // its own name: accepted
	honest := transport.NewPool(cfg)
	defer honest.Close()
	require.NoError(t, honest.Call(ctx, tc.nodes["n1"].Addr(), wire.TypeStatus, nil, &resp))
	require.Equal(t, "n1", resp.Node)
}

// TestTLSCertificatesRotateUnderLoad rewrites every node's certificate
// while a client writes, reloads them, and makes every connection new:
// no request fails, and the nodes present the new certificates.
func TestTLSCertificatesRotateUnderLoad(t *testing.T) {
	tc, caDir := tlsCluster(t, 3)
	c := tlsClient(t, caDir, tc.nodes["n1"].Addr())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	w := startWriter(ctx, c)
	w.waitOK(t, 20)

	before := map[string]string{}
	for _, name := range tc.names {
		n := tc.nodes[name]
		before[name] = n.tls.Current().SerialNumber.String()
		require.NoError(t, certs.CreateNode(certs.Options{Dir: tc.cfgs[name].CertsDir, CADir: caDir, Overwrite: true}, name, nil))
		n.ReloadTLS()
	}
	for _, name := range tc.names {
		n := tc.nodes[name]
		require.Eventually(t, func() bool { return n.tls.Current().SerialNumber.String() != before[name] }, 10*time.Second, 10*time.Millisecond,
			"%s reloaded its certificate", name)
		for _, other := range tc.names {
			n.peers.Drain(tc.nodes[other].Addr())
		}
	}
	w.waitOK(t, 50)
	ok, failed, first := w.stop()
	if first != nil {
		t.Fatalf("%d of %d writes failed during the rotation; first: %v", failed, failed+ok, first)
	}
}

// writer puts to 50 keys at W=3 in a loop until stopped, counting what
// succeeded and keeping the first failure: the load a rotation must not
// disturb.
type writer struct {
	ok, failed atomic.Int64
	first      atomic.Pointer[error]
	done       chan struct{}
	wg         sync.WaitGroup
}

func startWriter(ctx context.Context, c *client.Client) *writer {
	w := &writer{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-w.done:
				return
			default:
			}
			if _, err := c.Put(ctx, "b", fmt.Appendf(nil, "k%d", i%50), []byte("v"), client.W(3)); err != nil {
				w.failed.Add(1)
				w.first.CompareAndSwap(nil, &err)
			} else {
				w.ok.Add(1)
			}
		}
	}()
	return w
}

// waitOK waits for n more successful writes.
func (w *writer) waitOK(t *testing.T, n int64) {
	t.Helper()
	target := w.ok.Load() + n
	require.Eventually(t, func() bool { return w.ok.Load() >= target }, 20*time.Second, 5*time.Millisecond)
}

// stop ends the writes and reports them.
func (w *writer) stop() (ok, failed int64, first error) {
	close(w.done)
	w.wg.Wait()
	if e := w.first.Load(); e != nil {
		first = *e
	}
	return w.ok.Load(), w.failed.Load(), first
}
