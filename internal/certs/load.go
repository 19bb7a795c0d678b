package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scheme is the URI scheme of identities: cairn:node:NAME, cairn:user:NAME.
const scheme = "cairn"

// Kind tells a node's identity from a user's.
type Kind string

// The kinds of identity a certificate carries.
const (
	KindNode Kind = "node"
	KindUser Kind = "user"
)

// Identity is who a certificate speaks for.
type Identity struct {
	Kind Kind
	Name string
}

func (id Identity) String() string { return string(id.Kind) + " " + id.Name }

// IdentityOf reads the identity a certificate made by this package
// carries; ok is false for any other certificate (or two identities).
func IdentityOf(cert *x509.Certificate) (id Identity, ok bool) {
	if cert == nil {
		return Identity{}, false
	}
	for _, u := range cert.URIs {
		if u.Scheme != scheme {
			continue
		}
		kind, name, found := strings.Cut(u.Opaque, ":")
		if !found || CheckName(name) != nil || (kind != string(KindNode) && kind != string(KindUser)) {
			continue
		}
		if ok {
			return Identity{}, false
		}
		id, ok = Identity{Kind: Kind(kind), Name: name}, true
	}
	return id, ok
}

// Source is the TLS material of one side, as files in a directory: the CA
// bundle and a certificate with its key. Reload reads them again when
// they changed; connections made after it use the new material, those
// already open keep theirs.
type Source struct {
	caPath, certPath, keyPath string

	recheck check // what every certificate read must be

	mu    sync.Mutex // serialises Reload
	stamp string     // what the files looked like when last read
	cur   atomic.Pointer[material]
}

type material struct {
	cert tls.Certificate
	leaf *x509.Certificate
	pool *x509.CertPool
	id   Identity
}

// LoadNode reads a node's material from dir (ca.crt, node.crt, node.key):
// the certificate must carry a node identity, and name's when name is not
// empty.
func LoadNode(dir, name string) (*Source, error) {
	s := &Source{caPath: filepath.Join(dir, CAFile), certPath: filepath.Join(dir, NodeCert), keyPath: filepath.Join(dir, NodeKey)}
	want := Identity{Kind: KindNode, Name: name}
	return s, s.load(func(id Identity) error {
		if id.Kind != KindNode || (name != "" && id != want) {
			return fmt.Errorf("certs: %s is for %s, not node %s (make it with `cairn cert create-node %s`)", s.certPath, id, name, name)
		}
		return nil
	})
}

// LoadClient reads user's client material from dir (ca.crt and
// client.USER.crt with its key).
func LoadClient(dir, user string) (*Source, error) {
	if err := CheckName(user); err != nil {
		return nil, err
	}
	crt, key := ClientFiles(user)
	s := &Source{caPath: filepath.Join(dir, CAFile), certPath: filepath.Join(dir, crt), keyPath: filepath.Join(dir, key)}
	return s, s.load(func(id Identity) error {
		if id != (Identity{Kind: KindUser, Name: user}) {
			return fmt.Errorf("certs: %s is for %s, not user %s", s.certPath, id, user)
		}
		return nil
	})
}

// check tells whether the identity of a loaded certificate is the one
// this Source must hold; Reload applies it to every new certificate.
type check func(Identity) error

func (s *Source) load(c check) error {
	m, stamp, err := s.read(c)
	if err != nil {
		return err
	}
	s.stamp = stamp
	s.cur.Store(m)
	s.recheck = c
	return nil
}

// Identity is who the current certificate speaks for.
func (s *Source) Identity() Identity { return s.cur.Load().id }

// Current is the certificate in use now.
func (s *Source) Current() *x509.Certificate { return s.cur.Load().leaf }

// NotAfter is when the current certificate expires.
func (s *Source) NotAfter() time.Time { return s.cur.Load().leaf.NotAfter }

// Reload reads the files again if they changed since they were last read.
// It reports whether new material is in use; on an error the old material
// stays.
func (s *Source) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, err := s.fileStamp(); err == nil && st == s.stamp {
		return false, nil
	}
	m, stamp, err := s.read(s.recheck)
	if err != nil {
		return false, err
	}
	s.stamp = stamp
	s.cur.Store(m)
	return true, nil
}

// Watch calls Reload every interval and on every value received from
// signals (SIGHUP, say), telling report what each reload did, until ctx
// ends. It runs on the caller's goroutine.
func (s *Source) Watch(ctx context.Context, every time.Duration, signals <-chan os.Signal, report func(changed bool, err error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-signals:
			forced = true
		}
		if forced {
			s.mu.Lock()
			s.stamp = "" // a signal reads the files whatever their stamps say
			s.mu.Unlock()
		}
		changed, err := s.Reload()
		if changed || err != nil {
			report(changed, err)
		}
	}
}

// fileStamp sums up the files' sizes and modification times: a rewrite
// (including cairn cert's rename) changes it.
func (s *Source) fileStamp() (string, error) {
	var b strings.Builder
	for _, p := range []string{s.caPath, s.certPath, s.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func (s *Source) read(c check) (*material, string, error) {
	stamp, err := s.fileStamp()
	if err != nil {
		return nil, "", fmt.Errorf("certs: %w", err)
	}
	caPEM, err := os.ReadFile(s.caPath)
	if err != nil {
		return nil, "", fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, "", fmt.Errorf("certs: %s holds no PEM certificate", s.caPath)
	}
	cert, err := tls.LoadX509KeyPair(s.certPath, s.keyPath)
	if err != nil {
		return nil, "", fmt.Errorf("certs: %s: %w", s.certPath, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, "", fmt.Errorf("certs: %s: %w", s.certPath, err)
		}
	}
	id, ok := IdentityOf(leaf)
	if !ok {
		return nil, "", fmt.Errorf("certs: %s carries no cairn identity (make it with `cairn cert`)", s.certPath)
	}
	if c != nil {
		if err := c(id); err != nil {
			return nil, "", err
		}
	}
	// A certificate the CA in use does not vouch for would be refused by
	// every peer: better to say so here, once, than on every connection.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, "", fmt.Errorf("certs: %s is not signed by %s: %w", s.certPath, s.caPath, err)
	}
	return &material{cert: cert, leaf: leaf, pool: pool, id: id}, stamp, nil
}

// ServerConfig is the TLS configuration of a node's data port: TLS 1.3,
// and a client certificate signed by the CA required. Every handshake
// takes the material current at that moment.
func (s *Source) ServerConfig() *tls.Config { return s.serverConfig(tls.RequireAndVerifyClientCert) }

// ServerConfigCertOptional is ServerConfig for a node that also takes
// clients without a certificate (they prove who they are with a token in
// the protocol's hello instead): a certificate a client does present must
// still be signed by the CA.
func (s *Source) ServerConfigCertOptional() *tls.Config {
	return s.serverConfig(tls.VerifyClientCertIfGiven)
}

// AdminServerConfig is the TLS configuration of a node's admin HTTP port:
// TLS 1.3 with the node's certificate, and no client certificate asked
// for (a browser has none; the admin port wants a user's token instead).
func (s *Source) AdminServerConfig() *tls.Config { return s.serverConfig(tls.NoClientCert) }

func (s *Source) serverConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.cur.Load()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{m.cert},
				ClientCAs:    m.pool,
				ClientAuth:   auth,
			}, nil
		},
	}
}

// ClientConfig is the TLS configuration for dialling addr: TLS 1.3, and
// the server's certificate checked against the CA and required to carry a
// node identity, so that no client certificate can pose as a node. The
// address is not checked (see ClientTemplate); ClientConfigFor checks the
// node's name instead.
func (s *Source) ClientConfig(addr string) (*tls.Config, error) {
	return s.ClientConfigFor(addr, "")
}

// ClientConfigFor is ClientConfig for dialling member node at addr: the
// server's certificate must name that node. node "" accepts any node of
// the CA (a seed, whose name is not known yet).
func (s *Source) ClientConfigFor(addr, node string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	c := s.ClientTemplate()
	c.ServerName = host
	c.VerifyConnection = verifyNodeServer(s.cur.Load().pool, node)
	return c, nil
}

// ClientTemplate is ClientConfig without a server name, for a client
// library that sets it per dial. The CA bundle is the one current now;
// the client certificate is the one current at each handshake.
//
// A node is known by the name its certificate carries, not by an
// address: nodes advertise addresses (a container's, a pod's IP) that no
// certificate made in advance can name, and clients route to the
// addresses the ring gives. So the usual host name check is off
// (InsecureSkipVerify), and VerifyConnection does the rest of it: the
// chain to the CA, the server-authentication usage, and a node identity.
func (s *Source) ClientTemplate() *tls.Config {
	pool := s.cur.Load().pool
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		RootCAs:            pool,
		InsecureSkipVerify: true, // checked by VerifyConnection, below
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &s.cur.Load().cert, nil
		},
		VerifyConnection: verifyNodeServer(pool, ""),
	}
}

// verifyNodeServer checks a server's certificate chain against pool and
// that it names a cairn node: node, when not "".
func verifyNodeServer(pool *x509.CertPool, node string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("tls: failed to verify certificate: %w", err)
		}
		id, ok := IdentityOf(leaf)
		if !ok || id.Kind != KindNode {
			return fmt.Errorf("the server %s presented a certificate that names no cairn node", cs.ServerName)
		}
		if node != "" && id.Name != node {
			return fmt.Errorf("the server %s presented node %s's certificate, not %s's", cs.ServerName, id.Name, node)
		}
		return nil
	}
}

// CAOnlyClientConfig is the TLS configuration of a client that presents
// no certificate (it proves who it is with a token, to a node that takes
// that): dir/ca.crt verifies the server, which must present a cairn node
// certificate, as ClientTemplate checks.
func CAOnlyClientConfig(dir string) (*tls.Config, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", filepath.Join(dir, "ca.crt"))
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, InsecureSkipVerify: true, // checked by VerifyConnection
		VerifyConnection: verifyNodeServer(pool, "")}, nil
}
