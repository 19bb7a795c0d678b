// Package certs makes and loads what a secure cluster needs on its data
// port: a certificate authority, node certificates and client
// certificates (crypto/x509, ECDSA P-256, no openssl), and the TLS 1.3
// configurations nodes and clients use, reloaded from disk while they run
// so certificates rotate without a restart.
//
// Identities are carried in the certificate as a URI SAN, cairn:node:NAME
// or cairn:user:NAME, so a node certificate cannot pass for a client's
// identity or the other way round, whatever its common name says.
//
// The package never logs, never keeps a private key anywhere but in the
// files it was given and in memory, and never weakens verification: a
// certificate that does not chain to the configured CA is refused.
package certs
