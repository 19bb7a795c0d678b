package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/internal/wire"
)

// FuzzTLSListener sends arbitrary bytes to a server that speaks TLS:
// either as the raw stream, before any handshake (what a plain-text or
// broken client sends), or inside a TLS session of a client the CA vouches
// for (what a compromised client sends after the preamble and a hello).
// Nothing may panic, and a well-behaved client must still be served.
func FuzzTLSListener(f *testing.F) {
	hello, err := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 1, wire.TypeHello, wire.Hello{Cluster: "test"}, maxHelloFrame)
	if err != nil {
		f.Fatal(err)
	}
	getFrame, err := wire.AppendFrame(nil, 2, wire.TypeGet, wire.GetReq{Bucket: "b", Key: []byte("k")}, 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{}, false)
	f.Add(hello, false)
	f.Add(append(hello, getFrame...), true)
	f.Add(append(hello, 0xff, 0xff, 0xff, 0xff), true)
	f.Add([]byte{0x16, 0x03, 0x01, 0xff, 0xff}, false)

	dir := f.TempDir()
	o := certs.Options{Dir: dir}
	if err := errors.Join(certs.CreateCA(o), certs.CreateNode(o, "n1", nil), certs.CreateClient(o, "root")); err != nil {
		f.Fatal(err)
	}
	node, err := certs.LoadNode(dir, "n1")
	if err != nil {
		f.Fatal(err)
	}
	user, err := certs.LoadClient(dir, "root")
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Cluster = "test"
	cfg.ServerTLS = node.ServerConfig()
	cfg.HandshakeTimeout = 500 * time.Millisecond
	srv := NewServer(cfg, &testHandler{release: make(chan struct{})})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	pcfg := DefaultConfig()
	pcfg.Cluster = "test"
	pcfg.ClientTLS = user.ClientConfig
	good := NewPool(pcfg)
	f.Cleanup(func() {
		_ = good.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	addr := ln.Addr().String()
	clientTLS, err := user.ClientConfig(addr)
	if err != nil {
		f.Fatal(err)
	}
	inputs := 0

	f.Fuzz(func(t *testing.T, data []byte, inside bool) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		var conn net.Conn = c
		if inside {
			tc := tls.Client(c, clientTLS)
			if err := tc.Handshake(); err != nil {
				t.Fatalf("a client of the CA was refused: %v", err)
			}
			conn = tc
		}
		_, _ = conn.Write(data)
		// Read whatever comes back until the server closes or goes quiet.
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		inputs++
		if inputs%200 == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := get(ctx, good, addr, "k"); err != nil {
				t.Fatalf("a well-behaved client is no longer served: %v", err)
			}
		}
	})
}
