package certs

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkConnect measures a new connection on loopback, both ends in
// this process: a plain TCP connect, and the same with the TLS 1.3
// handshake a secure node's data port does (client certificate, ECDSA
// P-256), so that the difference is what security adds to a connection.
//
//	go test -run '^$' -bench Connect ./internal/certs
func BenchmarkConnect(b *testing.B) {
	dir := b.TempDir()
	o := Options{Dir: dir}
	require.NoError(b, CreateCA(o))
	require.NoError(b, CreateNode(o, "n1", nil))
	require.NoError(b, CreateClient(o, "root"))
	node, err := LoadNode(dir, "n1")
	require.NoError(b, err)
	root, err := LoadClient(dir, "root")
	require.NoError(b, err)

	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(b, err)
			defer ln.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					if secure {
						tc := tls.Server(c, node.ServerConfig())
						_ = tc.Handshake()
						_, _ = tc.Write([]byte{1})
						c = tc
					} else {
						_, _ = c.Write([]byte{1})
					}
					_ = c.Close()
				}
			}()
			cfg, err := root.ClientConfigFor(ln.Addr().String(), "n1")
			require.NoError(b, err)
			one := make([]byte, 1)
			for b.Loop() {
				c, err := net.Dial("tcp", ln.Addr().String())
				require.NoError(b, err)
				if secure {
					c = tls.Client(c, cfg)
				}
				// The first byte read finishes the handshake on both sides
				// (TLS 1.3 checks the client certificate after the client
				// believes it is done).
				_, err = c.Read(one)
				require.NoError(b, err)
				_ = c.Close()
			}
			_ = ln.Close()
			<-served
		})
	}
}
