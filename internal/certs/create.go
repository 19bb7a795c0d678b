package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// The files of a certificates directory. A node reads CAFile, NodeCert and
// NodeKey; a client reads CAFile and its user's ClientFiles. CAKey is where
// the CA's key goes by default; keep it elsewhere (--ca-key) on real
// clusters, since whoever holds it can mint any identity.
const (
	CAFile   = "ca.crt"
	CAKey    = "ca.key"
	NodeCert = "node.crt"
	NodeKey  = "node.key"
)

// ClientFiles names the certificate and key of user's client identity.
func ClientFiles(user string) (cert, key string) {
	return "client." + user + ".crt", "client." + user + ".key"
}

// Lifetimes of what Create* make unless told otherwise.
const (
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour
	DefaultCertLifetime = 2 * 365 * 24 * time.Hour
)

// validName is what a node or user name may be: it ends up in a URI and
// in file names.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName reports whether name can name a node or a user.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("certs: name %q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Options say where Create* write and how long what they make lives.
type Options struct {
	// Dir is the certificates directory, created if missing.
	Dir string
	// CADir holds the CA's certificate (ca.crt) when it is not Dir: a
	// certificate made for another directory (a node's own) is signed by
	// it, and ca.crt is copied into Dir when Dir has none. Empty: Dir's
	// ca.crt, or else the one next to CAKeyPath.
	CADir string
	// CAKeyPath is the CA's private key; empty means ca.key next to the
	// CA's certificate.
	CAKeyPath string
	// Lifetime of the certificate made; zero means the default.
	Lifetime time.Duration
	// Overwrite replaces files that exist; without it Create* refuse to
	// touch them and change nothing.
	Overwrite bool
}

// caCertPath finds the CA's certificate: in CADir when given, else in
// Dir, else next to the CA's key.
func (o Options) caCertPath() string {
	if o.CADir != "" {
		return filepath.Join(o.CADir, CAFile)
	}
	own := filepath.Join(o.Dir, CAFile)
	if _, err := os.Stat(own); err != nil && o.CAKeyPath != "" {
		return filepath.Join(filepath.Dir(o.CAKeyPath), CAFile)
	}
	return own
}

func (o Options) caKeyPath() string {
	if o.CAKeyPath != "" {
		return o.CAKeyPath
	}
	return filepath.Join(filepath.Dir(o.caCertPath()), CAKey)
}

// CreateCA makes a new certificate authority: Dir/ca.crt and its key.
func CreateCA(o Options) error {
	if err := o.refuseExisting(filepath.Join(o.Dir, CAFile), o.caKeyPath()); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := template("cairn CA", lifetime(o.Lifetime, DefaultCALifetime))
	if err != nil {
		return err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := writeKey(o.caKeyPath(), key); err != nil {
		return err
	}
	return writeCert(filepath.Join(o.Dir, CAFile), der)
}

// CreateNode makes name's node certificate, valid as a server for hosts
// (host names and IP addresses; localhost and the loopback addresses are
// always added) and as a client of other nodes: Dir/node.crt and
// Dir/node.key. The CA must exist already (Dir/ca.crt and its key).
func CreateNode(o Options, name string, hosts []string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return o.issue(NodeCert, NodeKey, "node", name, append([]string{"localhost", "127.0.0.1", "::1"}, hosts...),
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// CreateClient makes user's client certificate: Dir/client.USER.crt and
// its key.
func CreateClient(o Options, user string) error {
	if err := CheckName(user); err != nil {
		return err
	}
	crt, key := ClientFiles(user)
	return o.issue(crt, key, "user", user, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func (o Options) issue(crtFile, keyFile, kind, name string, hosts []string, usage []x509.ExtKeyUsage) error {
	crtPath, keyPath := filepath.Join(o.Dir, crtFile), filepath.Join(o.Dir, keyFile)
	if err := o.refuseExisting(crtPath, keyPath); err != nil {
		return err
	}
	caPath := o.caCertPath()
	ca, caKey, err := loadCA(caPath, o.caKeyPath())
	if err != nil {
		return err
	}
	if own := filepath.Join(o.Dir, CAFile); own != caPath {
		if _, err := os.Stat(own); errors.Is(err, os.ErrNotExist) {
			if err := writeCert(own, ca.Raw); err != nil {
				return err
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := template(name, lifetime(o.Lifetime, DefaultCertLifetime))
	if err != nil {
		return err
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	tmpl.URIs = []*url.URL{{Scheme: scheme, Opaque: kind + ":" + name}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	// The key first: a certificate without its key is useless, a key
	// without its certificate harmless.
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writeCert(crtPath, der)
}

func (o Options) refuseExisting(paths ...string) error {
	if o.Overwrite {
		return nil
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("certs: %s exists; remove it or pass --overwrite", p)
		}
	}
	return nil
}

func lifetime(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func template(cn string, life time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"cairn"}},
		// An hour back: a peer whose clock is a little behind still
		// accepts a certificate made just now.
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(life),
	}, nil
}

func loadCA(crtPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	crtPEM, err := os.ReadFile(crtPath)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: the CA certificate: %w (create it with `cairn cert create-ca`)", err)
	}
	block, _ := pem.Decode(crtPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("certs: %s holds no PEM certificate", crtPath)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %s: %w", crtPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: the CA key: %w (pass --ca-key)", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("certs: %s holds no PEM key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("certs: %s: not an ECDSA key", keyPath)
	}
	if !key.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, errors.New("certs: the CA key does not belong to the CA certificate")
	}
	return ca, key, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writeCert(path string, der []byte) error {
	return writePEM(path, "CERTIFICATE", der, 0o644)
}

// writePEM writes through a temporary file and a rename, so a node that
// reloads its files mid-write never reads half of one.
func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := pem.Encode(tmp, &pem.Block{Type: kind, Bytes: der}); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
