package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/internal/workers"
)

// Handler serves one request. Requests run concurrently, each on one of the
// server's worker goroutines for as long as it takes (it may block, on a
// peer for instance); ctx ends when the connection is lost or the server is
// forced to stop. It returns the response's type and body, or an error that
// goes back as an Error frame.
type Handler interface {
	Handle(ctx context.Context, peer Peer, t wire.Type, body []byte) (wire.Type, any, error)
}

// Peer is the far side of a server connection. Node is the name its
// handshake gave (empty for clients); it is what the cluster name vouches
// for, nothing more.
type Peer struct {
	Node string
	Addr string
}

// maxHelloFrame bounds the first frame of a connection, before the far side
// has proven it speaks the protocol.
const maxHelloFrame = 4 << 10

// Server serves the wire protocol on listeners.
type Server struct {
	cfg     Config
	handler Handler

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	draining  bool
	open      atomic.Int64
	wg        sync.WaitGroup // every connection goroutine
	traffic   Traffic
	workers   *workers.Pool[request]
}

// NewServer returns a server that answers requests with h.
func NewServer(cfg Config, h Handler) *Server {
	s := &Server{cfg: cfg.withDefaults(), handler: h,
		listeners: make(map[net.Listener]struct{}), conns: make(map[*serverConn]struct{})}
	s.workers = workers.New(workerIdle, func(r request) { r.sc.handle(r.f) })
	return s
}

// Serve accepts connections on ln until Shutdown (then it returns nil) or
// until the listener fails.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporaryAccept(err) {
				// Out of file descriptors and the like: wait, as
				// net/http does, rather than spin or give up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		s.accept(c)
	}
}

func isTemporaryAccept(err error) bool {
	var se interface{ Temporary() bool }
	return errors.As(err, &se) && se.Temporary()
}

func (s *Server) accept(c net.Conn) {
	remote := c.RemoteAddr().String()
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	if s.open.Load() >= int64(s.cfg.MaxConns) {
		s.wg.Add(1)
		s.mu.Unlock()
		s.cfg.emit(EventRejectedLimit, remote, nil)
		go func() {
			defer s.wg.Done()
			refuse(c, fmt.Errorf("%w: %d connections open, the limit", cairn.ErrOverloaded, s.cfg.MaxConns))
		}()
		return
	}
	s.open.Add(1)
	sc := newServerConn(s, c)
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sc.serve()
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		s.open.Add(-1)
	}()
}

// refuse tells a connection why it is refused, briefly, and closes it.
func refuse(c net.Conn, err error) {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	frame, _ := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 0, wire.TypeError, wire.ErrorFor(err), maxHelloFrame)
	_, _ = c.Write(frame)
	_ = c.Close()
}

// Shutdown stops accepting connections, stops reading new requests, lets
// the requests in flight finish and their answers go out, and closes every
// connection. When ctx ends first, the rest are cut off and ctx's error is
// returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for sc := range s.conns {
		sc.drain()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		// Every connection waited for its requests: the workers are idle.
		s.workers.Close()
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for sc := range s.conns {
			sc.kill()
		}
		s.mu.Unlock()
		<-done
		s.workers.Close()
		return ctx.Err()
	}
}

// serverConn is one accepted connection.
type serverConn struct {
	s        *Server
	conn     net.Conn
	remote   string
	peer     Peer
	w        *writer
	ctx      context.Context
	cancel   context.CancelFunc
	inflight chan struct{}
	handlers sync.WaitGroup
	draining atomic.Bool
	// broken holds the protocol error a handler found in its request's
	// body (see handle); the read loop returns it, which closes the
	// connection as a bad frame does.
	broken atomic.Pointer[error]
}

func newServerConn(s *Server, c net.Conn) *serverConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &serverConn{s: s, conn: c, remote: c.RemoteAddr().String(), ctx: ctx, cancel: cancel,
		inflight: make(chan struct{}, s.cfg.MaxInFlight)}
}

// drain makes the reader stop at once; requests in flight still finish.
func (sc *serverConn) drain() {
	sc.draining.Store(true)
	_ = sc.conn.SetReadDeadline(time.Now())
}

// kill cuts the connection off: handlers see their context end.
func (sc *serverConn) kill() {
	sc.cancel()
	_ = sc.conn.Close()
}

func (sc *serverConn) serve() {
	defer sc.cancel()
	defer sc.conn.Close()
	br := bufio.NewReaderSize(sc.conn, 32<<10)
	if err := sc.handshake(br); err != nil {
		sc.s.cfg.emit(EventHandshakeFailed, sc.remote, err)
		return
	}
	sc.s.cfg.emit(EventAccepted, sc.remote, nil)
	sc.w = newWriter(sc.conn, sc.s.cfg.WriteTimeout, func(error) { _ = sc.conn.Close() })
	sc.w.sent = &sc.s.traffic.sent
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		sc.w.run()
	}()

	err := sc.readLoop(br)
	if !sc.draining.Load() {
		// The peer is gone or misbehaved: nobody will read the answers of
		// requests still running, so tell them to stop.
		sc.cancel()
	}
	sc.handlers.Wait()
	if err != nil {
		sc.sendError(0, err)
	}
	sc.w.close()
	<-writerDone
	sc.s.cfg.emit(EventClosed, sc.remote, err)
}

// readLoop reads requests until the connection ends. It returns the
// protocol error to report to the peer before closing, or nil.
func (sc *serverConn) readLoop(br *bufio.Reader) error {
	cfg := sc.s.cfg
	for {
		_ = sc.conn.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		// drain and breakConn set their flag before their own deadline,
		// so either that deadline lands after ours or the flag is
		// already visible here.
		if sc.draining.Load() {
			return nil
		}
		if err := sc.broken.Load(); err != nil {
			return *err
		}
		payload, err := wire.ReadFrame(br, cfg.MaxFrame)
		if err != nil {
			var ne net.Error
			switch {
			case sc.broken.Load() != nil:
				return *sc.broken.Load()
			case sc.draining.Load():
				return nil
			case errors.Is(err, cairn.ErrProtocol):
				cfg.emit(EventProtocolError, sc.remote, err)
				return err
			case errors.As(err, &ne) && ne.Timeout():
				cfg.emit(EventIdleTimeout, sc.remote, err)
				return nil
			}
			return nil // the peer closed or the connection broke
		}
		sc.s.traffic.frameReceived(payload)
		f, err := wire.ParseFrame(payload)
		if err != nil {
			cfg.emit(EventProtocolError, sc.remote, err)
			return err
		}
		if f.Type == wire.TypePing {
			sc.send(f.ID, wire.TypePong, struct{}{})
			continue
		}
		// A full in-flight set blocks here, so the connection is not read:
		// TCP flow control pushes back on the sender.
		select {
		case sc.inflight <- struct{}{}:
		case <-sc.ctx.Done():
			return nil
		}
		sc.handlers.Add(1)
		sc.s.workers.Go(request{sc: sc, f: f})
	}
}

func (sc *serverConn) handle(f wire.Frame) {
	defer sc.handlers.Done()
	defer func() { <-sc.inflight }()
	t, resp, err := sc.s.handler.Handle(sc.ctx, sc.peer, f.Type, f.Body)
	if err != nil {
		// ParseFrame left this body to its decoder; if the body breaks
		// the framing rules, the peer is broken: close the connection
		// as ParseFrame would have, without answering the request.
		if perr := f.CheckBody(); perr != nil {
			sc.breakConn(perr)
			return
		}
	}
	if err != nil && errors.Is(err, context.Canceled) && sc.ctx.Err() != nil {
		// Cut off by a forced shutdown: the request did not fail, the
		// node went away under it.
		err = fmt.Errorf("%w: the node stopped before the request finished", cairn.ErrUnavailable)
	}
	if err != nil {
		sc.sendError(f.ID, err)
		return
	}
	sc.send(f.ID, t, resp)
}

// breakConn makes the read loop stop and return err, which it reports to
// the peer before closing the connection.
func (sc *serverConn) breakConn(err error) {
	if sc.broken.CompareAndSwap(nil, &err) {
		sc.s.cfg.emit(EventProtocolError, sc.remote, err)
		_ = sc.conn.SetReadDeadline(time.Now())
	}
}

func (sc *serverConn) send(id uint64, t wire.Type, body any) {
	frame, err := encodeFrame(id, t, body, sc.s.cfg.MaxFrame)
	if err != nil {
		sc.sendError(id, err)
		return
	}
	_ = sc.w.send(frame)
}

func (sc *serverConn) sendError(id uint64, err error) {
	frame, encErr := encodeFrame(id, wire.TypeError, wire.ErrorFor(err), sc.s.cfg.MaxFrame)
	if encErr != nil {
		// An error message too large for a frame: say so instead.
		frame, encErr = encodeFrame(id, wire.TypeError,
			wire.ErrorResp{Code: wire.CodeInternal, Message: "error too large to send"}, sc.s.cfg.MaxFrame)
	}
	if encErr == nil {
		_ = sc.w.send(frame)
	}
}

// handshake exchanges preambles and checks the peer's hello. A refusal is
// sent as an Error frame before the connection closes.
func (sc *serverConn) handshake(br *bufio.Reader) error {
	cfg := sc.s.cfg
	_ = sc.conn.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	defer func() { _ = sc.conn.SetDeadline(time.Time{}) }()
	if _, err := sc.conn.Write(wire.Preamble[:]); err != nil {
		return err
	}
	if err := wire.ReadPreamble(br); err != nil {
		sc.refuse(err)
		return err
	}
	payload, err := wire.ReadFrame(br, maxHelloFrame)
	if err != nil {
		sc.refuse(err)
		return err
	}
	f, err := wire.ParseFrame(payload)
	if err == nil && f.Type != wire.TypeHello {
		err = fmt.Errorf("%w: the first frame must be a hello, not %v", cairn.ErrProtocol, f.Type)
	}
	var hello wire.Hello
	if err == nil {
		err = wire.Decode(f.Body, &hello)
	}
	switch {
	case err != nil:
	case hello.Cluster != cfg.Cluster:
		err = fmt.Errorf("%w: this node belongs to cluster %q, not %q", cairn.ErrProtocol, cfg.Cluster, hello.Cluster)
	case len(hello.Auth) > 0:
		err = fmt.Errorf("%w: this node does not accept credentials", cairn.ErrUnauthorized)
	}
	if err != nil {
		sc.refuse(err)
		return err
	}
	sc.peer = Peer{Node: hello.Node, Addr: sc.remote}
	frame, err := wire.AppendFrame(nil, f.ID, wire.TypeHelloOK, wire.HelloOK{Node: cfg.Node, Version: wire.Version}, maxHelloFrame)
	if err != nil {
		return err
	}
	_, err = sc.conn.Write(frame)
	return err
}

func (sc *serverConn) refuse(err error) {
	frame, _ := wire.AppendFrame(nil, 0, wire.TypeError, wire.ErrorFor(err), maxHelloFrame)
	_, _ = sc.conn.Write(frame)
}
