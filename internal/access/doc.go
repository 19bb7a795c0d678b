// Package access decides who may do what on a node's data port: the roles
// (read, write, admin), which role each request type needs, the user
// records kept in cluster metadata, and the hashing of tokens.
//
// A user record holds the user's roles and, optionally, the SHA-256 hash
// of a token: the token itself is made by whoever creates it (the CLI),
// shown once and never stored, sent or logged by a node except as the
// credential of a connection's hello. Tokens are compared in constant
// time.
//
// The package is pure: it does no I/O, reads no clock, and takes its
// randomness as an io.Reader. It never logs, and no error it returns
// carries a token.
package access
