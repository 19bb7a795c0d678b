package client

import (
	"crypto/tls"

	"github.com/cairnkv/cairn/internal/certs"
)

// TLSFromCertsDir returns the TLS configuration of user's identity in a
// certificates directory made with `cairn cert`: dir/ca.crt and
// dir/client.USER.crt with its key. The server must present a cairn node
// certificate signed by that CA.
func TLSFromCertsDir(dir, user string) (*tls.Config, error) {
	src, err := certs.LoadClient(dir, user)
	if err != nil {
		return nil, err
	}
	return src.ClientTemplate(), nil
}

// TLSFromCA returns the TLS configuration of a client without a
// certificate, for a node that accepts a token instead
// (--token-only-clients; set Config.Token): dir/ca.crt verifies the node,
// which must present a cairn node certificate signed by that CA.
func TLSFromCA(dir string) (*tls.Config, error) {
	return certs.CAOnlyClientConfig(dir)
}
