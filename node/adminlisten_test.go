package node

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/cairnkv/cairn/internal/certs"
	"github.com/stretchr/testify/require"
)

// TestSniffListenerServesTLSAndPlainOnOnePort: one admin port answers a
// plain request as plain (r.TLS nil) and a TLS one as TLS; a connection
// that never says a word, and one that closes at once, hold nothing up;
// and closing the server stops every goroutine the listener started
// (goleak checks at the end of the package).
func TestSniffListenerServesTLSAndPlainOnOnePort(t *testing.T) {
	caDir, nodeDir := t.TempDir(), t.TempDir()
	require.NoError(t, certs.CreateCA(certs.Options{Dir: caDir}))
	require.NoError(t, certs.CreateNode(certs.Options{Dir: nodeDir, CADir: caDir}, "n1", nil))
	src, err := certs.LoadNode(nodeDir, "n1")
	require.NoError(t, err)

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := newSniffListener(inner, src.AdminServerConfig())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			_, _ = io.WriteString(w, "tls")
			return
		}
		_, _ = io.WriteString(w, "plain")
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	// Silent and closed-at-once connections first: they are sniffed
	// beside the requests, not before them.
	silent, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer silent.Close()
	closed, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, closed.Close())

	get := func(hc *http.Client, url string) string {
		t.Helper()
		resp, err := hc.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body)
	}
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	require.Equal(t, "plain", get(plain, "http://"+addr+"/"))
	caOnly, err := certs.CAOnlyClientConfig(caDir)
	require.NoError(t, err)
	secure := &http.Client{Transport: &http.Transport{TLSClientConfig: caOnly}}
	defer secure.CloseIdleConnections()
	require.Equal(t, "tls", get(secure, "https://"+addr+"/"))
	require.Equal(t, "plain", get(plain, "http://"+addr+"/again"))

	// Closing while the silent connection is still being sniffed.
	require.NoError(t, srv.Close())
	require.True(t, errors.Is(<-served, http.ErrServerClosed))
	_, err = ln.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}
