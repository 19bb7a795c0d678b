package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cluster makes a CA, node n1's certificate and user root's in a fresh
// directory.
func cluster(t *testing.T) Options {
	t.Helper()
	o := Options{Dir: t.TempDir()}
	require.NoError(t, CreateCA(o))
	require.NoError(t, CreateNode(o, "n1", []string{"db1.example", "10.0.0.7"}))
	require.NoError(t, CreateClient(o, "root"))
	return o
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	b, _ := pem.Decode(raw)
	require.NotNil(t, b)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func TestCreatedCertificatesCarryTheirIdentityAndHosts(t *testing.T) {
	o := cluster(t)
	node := readCert(t, filepath.Join(o.Dir, NodeCert))
	id, ok := IdentityOf(node)
	require.True(t, ok)
	require.Equal(t, Identity{Kind: KindNode, Name: "n1"}, id)
	require.Contains(t, node.DNSNames, "db1.example")
	require.Contains(t, node.DNSNames, "localhost")
	require.True(t, node.IPAddresses[len(node.IPAddresses)-1].Equal(net.ParseIP("10.0.0.7")))
	require.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, node.ExtKeyUsage)

	crt, _ := ClientFiles("root")
	user := readCert(t, filepath.Join(o.Dir, crt))
	id, ok = IdentityOf(user)
	require.True(t, ok)
	require.Equal(t, Identity{Kind: KindUser, Name: "root"}, id)
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, user.ExtKeyUsage, "a client certificate cannot serve")

	fi, err := os.Stat(filepath.Join(o.Dir, NodeKey))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "keys are private")
}

func TestCreateRefusesToOverwriteAndBadNames(t *testing.T) {
	o := cluster(t)
	before, err := os.ReadFile(filepath.Join(o.Dir, CAFile))
	require.NoError(t, err)
	require.ErrorContains(t, CreateCA(o), "exists")
	require.ErrorContains(t, CreateNode(o, "n1", nil), "exists")
	after, err := os.ReadFile(filepath.Join(o.Dir, CAFile))
	require.NoError(t, err)
	require.Equal(t, before, after, "a refused create changes nothing")

	for _, bad := range []string{"", "../n1", "a b", "n:1", "-x"} {
		require.Error(t, CreateNode(o, bad, nil), bad)
		require.Error(t, CreateClient(o, bad), bad)
	}
	require.ErrorContains(t, CreateNode(Options{Dir: t.TempDir()}, "n2", nil), "create-ca", "no CA yet")
}

func TestIdentityOfRefusesForeignAndAmbiguousCertificates(t *testing.T) {
	_, ok := IdentityOf(nil)
	require.False(t, ok)
	_, ok = IdentityOf(&x509.Certificate{})
	require.False(t, ok)
	two := &x509.Certificate{URIs: []*url.URL{{Scheme: "cairn", Opaque: "node:n1"}, {Scheme: "cairn", Opaque: "user:root"}}}
	_, ok = IdentityOf(two)
	require.False(t, ok, "a certificate naming two identities names none")
	odd := &x509.Certificate{URIs: []*url.URL{{Scheme: "cairn", Opaque: "admin:root"}, {Scheme: "https", Host: "x"}}}
	_, ok = IdentityOf(odd)
	require.False(t, ok)
}

func TestLoadChecksTheIdentityAndTheCA(t *testing.T) {
	o := cluster(t)
	src, err := LoadNode(o.Dir, "n1")
	require.NoError(t, err)
	require.Equal(t, Identity{Kind: KindNode, Name: "n1"}, src.Identity())
	_, err = LoadNode(o.Dir, "n2")
	require.ErrorContains(t, err, "not node n2")
	_, err = LoadClient(o.Dir, "root")
	require.NoError(t, err)
	_, err = LoadClient(o.Dir, "alice")
	require.Error(t, err)

	// A node certificate from another CA than the bundle's.
	other := Options{Dir: t.TempDir()}
	require.NoError(t, CreateCA(other))
	require.NoError(t, CreateNode(other, "n1", nil))
	copyFile(t, filepath.Join(o.Dir, CAFile), filepath.Join(other.Dir, CAFile))
	_, err = LoadNode(other.Dir, "n1")
	require.ErrorContains(t, err, "not signed by")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, raw, 0o644))
}

func TestReloadPicksUpRotatedFilesAndKeepsTheOldOnError(t *testing.T) {
	o := cluster(t)
	src, err := LoadNode(o.Dir, "n1")
	require.NoError(t, err)
	changed, err := src.Reload()
	require.NoError(t, err)
	require.False(t, changed, "nothing changed on disk")

	first := src.cur.Load().leaf.SerialNumber
	o.Overwrite = true
	require.NoError(t, CreateNode(o, "n1", nil))
	changed, err = src.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	require.NotEqual(t, first, src.cur.Load().leaf.SerialNumber)

	// A certificate for another node written over this one's is refused,
	// and the material in use stays.
	inUse := src.cur.Load().leaf.SerialNumber
	require.NoError(t, CreateNode(o, "n9", nil))
	_, err = src.Reload()
	require.ErrorContains(t, err, "not node n1")
	require.Equal(t, inUse, src.cur.Load().leaf.SerialNumber)
}

// TestConfigsHandshake runs the server and client configurations against
// each other over a real socket: a client with the CA's certificate gets
// through; one from another CA, or without any, does not; a client
// certificate cannot pose as a node server.
func TestConfigsHandshake(t *testing.T) {
	o := cluster(t)
	node, err := LoadNode(o.Dir, "n1")
	require.NoError(t, err)
	root, err := LoadClient(o.Dir, "root")
	require.NoError(t, err)

	handshake := func(server *tls.Config, client *tls.Config) (serverErr, clientErr error, peer *x509.Certificate) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := ln.Accept()
			if err != nil {
				serverErr = err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			tc := tls.Server(c, server)
			serverErr = tc.Handshake()
			if serverErr == nil {
				peer = tc.ConnectionState().PeerCertificates[0]
				_, serverErr = tc.Write([]byte{1})
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Client(c, client)
		clientErr = tc.Handshake()
		if clientErr == nil {
			// TLS 1.3 reports a refused client certificate on the first read.
			_, clientErr = tc.Read(make([]byte, 1))
		}
		_ = c.Close()
		<-done
		return serverErr, clientErr, peer
	}

	cc, err := root.ClientConfig("127.0.0.1:1")
	require.NoError(t, err)
	serr, cerr, peer := handshake(node.ServerConfig(), cc)
	require.NoError(t, serr)
	require.NoError(t, cerr)
	id, _ := IdentityOf(peer)
	require.Equal(t, Identity{Kind: KindUser, Name: "root"}, id)

	other := cluster(t)
	stranger, err := LoadClient(other.Dir, "root")
	require.NoError(t, err)
	sc, err := stranger.ClientConfig("127.0.0.1:1")
	require.NoError(t, err)
	serr, cerr, _ = handshake(node.ServerConfig(), sc)
	require.Error(t, serr)
	require.Error(t, cerr, "the stranger does not trust the server either")

	noCert := cc.Clone()
	noCert.GetClientCertificate = nil
	serr, cerr, _ = handshake(node.ServerConfig(), noCert)
	require.Error(t, serr)
	require.Error(t, cerr)

	// A server presenting a client certificate.
	posing := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{root.cur.Load().cert}}
	_, cerr, _ = handshake(posing, cc)
	require.Error(t, cerr)

	// A node is known by its name, not its address: dialled at an address
	// its certificate does not hold (a container's IP), n1 is taken, as
	// any node of the CA or as member n1, and refused as member n2.
	far, err := root.ClientConfigFor("172.21.0.6:7101", "n1")
	require.NoError(t, err)
	serr, cerr, _ = handshake(node.ServerConfig(), far)
	require.NoError(t, serr)
	require.NoError(t, cerr)
	anyNode, err := root.ClientConfig("172.21.0.6:7101")
	require.NoError(t, err)
	serr, cerr, _ = handshake(node.ServerConfig(), anyNode)
	require.NoError(t, serr)
	require.NoError(t, cerr)
	wrong, err := root.ClientConfigFor("172.21.0.6:7101", "n2")
	require.NoError(t, err)
	_, cerr, _ = handshake(node.ServerConfig(), wrong)
	require.ErrorContains(t, cerr, "presented node n1's certificate, not n2's")
	// Another CA's node, at the right address and name, is refused.
	otherNode := Options{Dir: t.TempDir(), CADir: other.Dir}
	require.NoError(t, CreateNode(otherNode, "n1", nil))
	impostor, err := LoadNode(otherNode.Dir, "n1")
	require.NoError(t, err)
	near, err := root.ClientConfigFor("127.0.0.1:7101", "n1")
	require.NoError(t, err)
	_, cerr, _ = handshake(impostor.ServerConfigCertOptional(), near)
	require.ErrorContains(t, cerr, "unknown authority")
}

func TestCreateNodeInItsOwnDirectory(t *testing.T) {
	ca := Options{Dir: t.TempDir()}
	require.NoError(t, CreateCA(ca))
	own := t.TempDir()
	require.NoError(t, CreateNode(Options{Dir: own, CADir: ca.Dir}, "n2", nil))
	_, err := os.Stat(filepath.Join(own, CAKey))
	require.ErrorIs(t, err, os.ErrNotExist, "the CA's key stays where it was")
	src, err := LoadNode(own, "n2")
	require.NoError(t, err, "ca.crt was copied next to the node's files")
	require.Equal(t, "n2", src.Identity().Name)
}

func TestCreateFindsTheCANextToItsKey(t *testing.T) {
	ca := Options{Dir: t.TempDir()}
	require.NoError(t, CreateCA(ca))
	own := t.TempDir()
	require.NoError(t, CreateClient(Options{Dir: own, CAKeyPath: filepath.Join(ca.Dir, CAKey)}, "alice"))
	_, err := LoadClient(own, "alice")
	require.NoError(t, err)
}
