package node

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// The admin port under security speaks HTTPS and plain HTTP on the one
// port: a probe (a load balancer's, an orchestrator's, `cairn dev`'s)
// holds no certificate and may not speak TLS, and /healthz and /readyz
// say nothing secret, while everything else (metrics, pprof, the console)
// travels with an admin's token and so only over TLS. The first byte of a
// connection tells them apart: a TLS connection opens with a handshake
// record (content type 22), and no HTTP request line starts with it.

// tlsHandshakeRecord is the content type of a TLS handshake record.
const tlsHandshakeRecord = 0x16

// sniffTimeout bounds the wait for a new connection's first byte.
const sniffTimeout = 5 * time.Second

// sniffListener hands out each accepted connection as a *tls.Conn (when
// it opens with a TLS handshake) or as the plain connection, its first
// byte kept. It owns one goroutine that accepts and one per connection
// still being sniffed; Close stops them all.
type sniffListener struct {
	inner net.Listener
	tls   *tls.Config

	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu       sync.Mutex
	err      error                 // the inner listener's, once Accept failed
	sniffing map[net.Conn]struct{} // waiting for their first byte
}

func newSniffListener(inner net.Listener, cfg *tls.Config) *sniffListener {
	l := &sniffListener{inner: inner, tls: cfg, conns: make(chan net.Conn), done: make(chan struct{}),
		sniffing: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *sniffListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.closeDone()
			return
		}
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			_ = c.Close()
			return
		default:
		}
		l.sniffing[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	defer l.wg.Done()
	br := bufio.NewReaderSize(c, 512)
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	l.mu.Lock()
	delete(l.sniffing, c)
	l.mu.Unlock()
	if err != nil {
		_ = c.Close()
		return
	}
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == tlsHandshakeRecord {
		out = tls.Server(out, l.tls)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		_ = c.Close()
	}
}

// Accept returns the next sniffed connection.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes the connections still being sniffed, and
// waits for its goroutines.
func (l *sniffListener) Close() error {
	err := l.inner.Close()
	l.closeDone()
	l.wg.Wait()
	return err
}

// closeDone ends Accept and the sniffing, which then hand out nothing.
func (l *sniffListener) closeDone() {
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.sniffing {
			_ = c.Close()
		}
		l.mu.Unlock()
	})
}

func (l *sniffListener) Addr() net.Addr { return l.inner.Addr() }

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
