package transport

import (
	"bufio"
	"container/list"
	"context"
	"crypto/tls"
	"crypto/x509"
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

// InlineHandler is a Handler that can answer some requests on the
// connection's reader itself, without handing them to a worker: the
// hand-off (a goroutine woken, often a thread with it) costs more than
// the request when the answer is in memory. HandleInline must never wait:
// no disk, no network, no lock held across either. ok false hands the
// request to Handle on a worker as usual, which is also how it must treat
// anything it would refuse, so that the refusal is Handle's.
type InlineHandler interface {
	HandleInline(peer Peer, t wire.Type, body []byte) (rt wire.Type, resp any, ok bool)
}

// Peer is the far side of a server connection. Node is the name its
// handshake gave (empty for clients); it is what the cluster name vouches
// for, nothing more.
type Peer struct {
	Node string
	Addr string
	// Cert is the certificate the far side proved it holds in the TLS
	// handshake; nil without TLS.
	Cert *x509.Certificate
	// Auth is the credential the hello carried (a token); nil if none.
	Auth []byte
	// Principal is what Config.Authenticate made of the connection, once,
	// for the handler to use with every request; nil without it.
	Principal any
}

// maxHelloAuth bounds a hello's credential.
const maxHelloAuth = 1 << 10

// maxHelloFrame bounds the first frame of a connection, before the far side
// has proven it speaks the protocol.
const maxHelloFrame = 4 << 10

// Server serves the wire protocol on listeners.
type Server struct {
	cfg     Config
	handler Handler
	inline  InlineHandler // handler, when it answers some requests inline

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	draining  bool
	// pending holds the connections in their handshake, oldest first;
	// clients, peers and sources count those past it (see admit).
	pending list.List
	clients int
	peers   int
	sources map[string]int // client connections per remote IP
	evicted []*serverConn  // idle clients taken off the books under mu, closed by admit after
	wg      sync.WaitGroup // every connection goroutine
	traffic Traffic
	workers *workers.Pool[request]
	budgets [2]budget // clients', peers'
}

// NewServer returns a server that answers requests with h.
func NewServer(cfg Config, h Handler) *Server {
	s := &Server{cfg: cfg.withDefaults(), handler: h,
		listeners: make(map[net.Listener]struct{}), conns: make(map[*serverConn]struct{}),
		sources: make(map[string]int)}
	s.inline, _ = h.(InlineHandler)
	s.budgets[0].limit = s.cfg.MaxInFlightBytes
	s.budgets[1].limit = s.cfg.MaxPeerInFlightBytes
	s.workers = workers.New(workerIdle, func(r request) { r.sc.handle(r) })
	return s
}

// InFlightBytes is what the server's client and peer connections hold
// now: requests being served and answers not yet written, as the budgets
// count them.
func (s *Server) InFlightBytes() (clients, peers int64) {
	return s.budgets[0].used.Load(), s.budgets[1].used.Load()
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
		s.accept(quiet(c))
	}
}

func isTemporaryAccept(err error) bool {
	var se interface{ Temporary() bool }
	return errors.As(err, &se) && se.Temporary()
}

func (s *Server) accept(c net.Conn) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	// Nothing is known of a connection before its hello, so it is not
	// counted against any cap yet; a flood of sockets that never speak
	// costs at most MaxHandshakes goroutines, each for HandshakeTimeout
	// at most, and delays the others only by pushing out the oldest.
	var evicted *serverConn
	if s.pending.Len() >= s.cfg.MaxHandshakes {
		evicted = s.pending.Remove(s.pending.Front()).(*serverConn)
		evicted.pending = nil
		evicted.evicted.Store(true)
	}
	sc := newServerConn(s, c)
	sc.pending = s.pending.PushBack(sc)
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if evicted != nil {
		s.cfg.emit(EventHandshakeEvicted, evicted.remote, nil)
		evicted.kill() // a VerifyPeer waiting on its behalf stops too
	}
	go func() {
		defer s.wg.Done()
		sc.serve()
		s.forget(sc)
	}()
}

// admit places a connection whose hello was accepted under the cap of its
// class: peers under MaxPeerConns, clients under MaxConns and, by remote
// IP, MaxConnsPerSource. It returns the refusal to send otherwise.
func (s *Server) admit(sc *serverConn, peer bool) error {
	s.mu.Lock()
	if sc.pending != nil {
		s.pending.Remove(sc.pending)
		sc.pending = nil
	}
	var kind EventKind
	var err error
	switch {
	case s.draining:
		err = fmt.Errorf("%w: the node is shutting down", cairn.ErrUnavailable)
		kind = EventHandshakeFailed
	case peer && s.peers >= s.cfg.MaxPeerConns:
		err = fmt.Errorf("%w: %d peer connections open, the limit", cairn.ErrOverloaded, s.cfg.MaxPeerConns)
		kind = EventRejectedPeerLimit
	case !peer && s.clients >= s.cfg.MaxConns && !s.evictIdleLocked():
		err = fmt.Errorf("%w: %d client connections open, the limit", cairn.ErrOverloaded, s.cfg.MaxConns)
		kind = EventRejectedLimit
	case !peer && s.sources[sc.source] >= s.cfg.MaxConnsPerSource:
		err = fmt.Errorf("%w: %d client connections open from %s, the limit per address", cairn.ErrOverloaded, s.cfg.MaxConnsPerSource, sc.source)
		kind = EventRejectedSource
	case peer:
		s.peers++
	default:
		s.clients++
		s.sources[sc.source]++
	}
	if err == nil {
		sc.admitted, sc.isPeer = true, peer
		sc.lastRead.Store(time.Now().UnixNano())
	}
	victims := s.evicted
	s.evicted = nil
	s.mu.Unlock()
	for _, v := range victims {
		s.cfg.emit(EventIdleEvicted, v.remote, nil)
		v.kill()
	}
	if err != nil {
		s.cfg.emitFor(kind, sc.remote, sc.peer.Node, err)
	}
	return err
}

// evictIdleLocked makes room for one client by taking the client
// connection idle the longest (nothing read for IdleEvictAfter, nothing in
// flight or unwritten) off the books; admit closes it once s.mu is
// released. It reports whether it found one. The scan is over every
// connection, but it only runs when the client cap is full.
func (s *Server) evictIdleLocked() bool {
	if s.cfg.IdleEvictAfter <= 0 {
		return false
	}
	cutoff := time.Now().Add(-s.cfg.IdleEvictAfter).UnixNano()
	var victim *serverConn
	for c := range s.conns {
		if !c.admitted || c.isPeer || c.held.Load() != 0 || len(c.inflight) != 0 {
			continue
		}
		if at := c.lastRead.Load(); at <= cutoff && (victim == nil || at < victim.lastRead.Load()) {
			victim = c
		}
	}
	if victim == nil {
		return false
	}
	// Off the books now, so that the newcomer's place is exact; forget
	// skips a connection that is no longer admitted.
	victim.admitted = false
	s.clients--
	if s.sources[victim.source]--; s.sources[victim.source] <= 0 {
		delete(s.sources, victim.source)
	}
	s.evicted = append(s.evicted, victim)
	return true
}

// forget takes a closed connection out of the server's books.
func (s *Server) forget(sc *serverConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, sc)
	if sc.pending != nil {
		s.pending.Remove(sc.pending)
		sc.pending = nil
	}
	if !sc.admitted {
		return
	}
	if sc.isPeer {
		s.peers--
		return
	}
	s.clients--
	if s.sources[sc.source]--; s.sources[sc.source] <= 0 {
		delete(s.sources, sc.source)
	}
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
	conn     net.Conn // the socket: deadlines and Close go here
	rw       net.Conn // what reads and writes go through: conn, or TLS over it
	remote   string
	source   string // the remote IP: what MaxConnsPerSource counts by
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
	// evicted is set when the connection was closed in its handshake to
	// make room for a newer one.
	evicted atomic.Bool
	// lastRead is when the last frame was read (UnixNano), or the
	// connection admitted: how long a client has been idle.
	lastRead atomic.Int64

	// Guarded by s.mu.
	pending  *list.Element // the connection's place in s.pending, while in its handshake
	admitted bool          // counted under its class's cap
	isPeer   bool

	// Backpressure (Config.MaxConnBytes). held is what the connection's
	// requests being served and answers not yet written cost now, in
	// bytes; budget is the server's allowance it draws on, and maxHeld the
	// bytes beyond which the connection is not read. estimate is what a
	// request is reserved until its answer exists (see nextEstimate).
	budget   *budget
	maxHeld  int64
	held     atomic.Int64
	estimate atomic.Int64
	room     chan struct{} // signalled when held shrinks, or when the reader must stop
}

func newServerConn(s *Server, c net.Conn) *serverConn {
	ctx, cancel := context.WithCancel(context.Background())
	remote := c.RemoteAddr().String()
	source := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		source = host
	}
	return &serverConn{s: s, conn: c, rw: c, remote: remote, source: source, ctx: ctx, cancel: cancel,
		inflight: make(chan struct{}, s.cfg.MaxInFlight), room: make(chan struct{}, 1)}
}

// wake tells a reader waiting for room to look again.
func (sc *serverConn) wake() {
	select {
	case sc.room <- struct{}{}:
	default:
	}
}

// drain makes the reader stop at once; requests in flight still finish.
func (sc *serverConn) drain() {
	sc.draining.Store(true)
	_ = sc.conn.SetReadDeadline(time.Now())
	sc.wake()
}

// kill cuts the connection off: handlers see their context end.
func (sc *serverConn) kill() {
	sc.cancel()
	_ = sc.conn.Close()
}

func (sc *serverConn) serve() {
	defer sc.cancel()
	defer sc.conn.Close()
	if sc.s.cfg.ServerTLS != nil && !sc.startTLS() {
		return
	}
	// The handshake reads through a buffer just large enough for a
	// hello: a socket that never completes one costs little.
	br := bufio.NewReaderSize(sc.rw, maxHelloFrame+64)
	if !sc.handshake(br) {
		return
	}
	// Whatever the far side sent after its hello is in the small buffer;
	// the large one reads through it, then from the socket.
	br = bufio.NewReaderSize(br, 32<<10)
	cfg := sc.s.cfg
	cfg.emitFor(EventAccepted, sc.remote, sc.peer.Node, nil)
	sc.budget, sc.maxHeld = &sc.s.budgets[0], int64(cfg.MaxConnBytes)
	if sc.isPeer {
		sc.budget, sc.maxHeld = &sc.s.budgets[1], int64(cfg.MaxPeerConnBytes)
	}
	sc.estimate.Store(max(sc.maxHeld>>initialEstimateShift, minEstimate))
	sc.w = newWriter(sc.rw, cfg.WriteTimeout, func(error) {
		// The far side is gone or stopped reading: nobody will read the
		// answers of the requests still running, so tell them to stop
		// (a reader waiting for room learns it this way too).
		sc.cancel()
		_ = sc.conn.Close()
	})
	sc.w.sent = &sc.s.traffic.sent
	sc.w.release = sc.release
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
		sc.sendError(0, err, 0, false)
	}
	sc.w.close()
	<-writerDone
	cfg.emitFor(EventClosed, sc.remote, sc.peer.Node, err)
}

// readLoop reads requests until the connection ends. It returns the
// protocol error to report to the peer before closing, or nil.
func (sc *serverConn) readLoop(br *bufio.Reader) error {
	cfg := sc.s.cfg
	for {
		if !sc.waitForRoom() {
			return nil
		}
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
		sc.lastRead.Store(time.Now().UnixNano())
		f, err := wire.ParseFrame(payload)
		if err != nil {
			cfg.emit(EventProtocolError, sc.remote, err)
			return err
		}
		if f.Type == wire.TypePing {
			// A pong costs the connection like any answer, so a ping
			// flood that is not read pauses the connection too.
			sc.send(f.ID, wire.TypePong, struct{}{}, 0, false)
			continue
		}
		// A full in-flight set blocks here, so the connection is not read:
		// TCP flow control pushes back on the sender.
		select {
		case sc.inflight <- struct{}{}:
		case <-sc.ctx.Done():
			return nil
		}
		reserve := max(int64(len(payload)), sc.estimate.Load())
		if !sc.budget.tryAcquire(reserve) {
			<-sc.inflight
			err := fmt.Errorf("%w: %d bytes of requests and answers in flight on this node, the limit is %d; retry after a pause",
				cairn.ErrOverloaded, sc.budget.used.Load(), sc.budget.limit)
			cfg.emitFor(EventOverloaded, sc.remote, sc.peer.Node, err)
			sc.sendError(f.ID, err, 0, false)
			continue
		}
		sc.held.Add(reserve)
		sc.handlers.Add(1)
		r := request{sc: sc, f: f, reserved: reserve}
		if sc.s.inline != nil {
			if t, resp, ok := sc.s.inline.HandleInline(sc.peer, f.Type, f.Body); ok {
				sc.answer(r, t, resp, nil)
				continue
			}
		}
		sc.s.workers.Go(r)
	}
}

// waitForRoom holds the reader, before it reads the next frame, while the
// connection holds its cap or more: the far side is sending faster than
// it reads its answers, and not reading lets TCP push back on it. Since
// something is held whenever it waits, a request or an answer is on its
// way out, and its release wakes the reader; a writer that fails cancels
// the connection. It reports false when the connection is cut off.
func (sc *serverConn) waitForRoom() bool {
	if sc.held.Load() < sc.maxHeld {
		return true
	}
	sc.s.cfg.emitFor(EventPaused, sc.remote, sc.peer.Node, nil)
	for sc.held.Load() >= sc.maxHeld {
		if sc.draining.Load() || sc.broken.Load() != nil {
			return true // the read loop stops on its own checks
		}
		select {
		case <-sc.room:
		case <-sc.ctx.Done():
			return false
		}
	}
	return true
}

// release gives back what written or dropped frames cost and the request
// slots they held.
func (sc *serverConn) release(cost int64, slots int) {
	sc.held.Add(-cost)
	sc.budget.add(-cost)
	for range slots {
		<-sc.inflight
	}
	sc.wake()
}

func (sc *serverConn) handle(r request) {
	t, resp, err := sc.s.handler.Handle(sc.ctx, sc.peer, r.f.Type, r.f.Body)
	sc.answer(r, t, resp, err)
}

// answer sends what the handler made of r, and ends r.
func (sc *serverConn) answer(r request, t wire.Type, resp any, err error) {
	defer sc.handlers.Done()
	f := r.f
	if err != nil {
		// ParseFrame left this body to its decoder; if the body breaks
		// the framing rules, the peer is broken: close the connection
		// as ParseFrame would have, without answering the request.
		if perr := f.CheckBody(); perr != nil {
			sc.breakConn(perr)
			sc.release(r.reserved, 1)
			return
		}
	}
	if err != nil && errors.Is(err, context.Canceled) && sc.ctx.Err() != nil {
		// Cut off by a forced shutdown or a lost connection: the request
		// did not fail, the node or the far side went away under it.
		err = fmt.Errorf("%w: the node stopped before the request finished", cairn.ErrUnavailable)
	}
	if err != nil {
		sc.sendError(f.ID, err, r.reserved, true)
		return
	}
	sc.send(f.ID, t, resp, r.reserved, true)
}

// breakConn makes the read loop stop and return err, which it reports to
// the peer before closing the connection.
func (sc *serverConn) breakConn(err error) {
	if sc.broken.CompareAndSwap(nil, &err) {
		sc.s.cfg.emit(EventProtocolError, sc.remote, err)
		_ = sc.conn.SetReadDeadline(time.Now())
		sc.wake()
	}
}

// send answers a request (slot set) or a ping. reserved is what the
// request was counted at until now; the answer's own size replaces it.
func (sc *serverConn) send(id uint64, t wire.Type, body any, reserved int64, slot bool) {
	frame, err := encodeFrame(id, t, body, sc.s.cfg.MaxFrame)
	if err != nil {
		sc.sendError(id, err, reserved, slot)
		return
	}
	sc.queue(frame, reserved, slot)
}

func (sc *serverConn) sendError(id uint64, err error, reserved int64, slot bool) {
	frame, encErr := encodeFrame(id, wire.TypeError, wire.ErrorFor(err), sc.s.cfg.MaxFrame)
	if encErr != nil {
		// An error message too large for a frame: say so instead.
		frame, encErr = encodeFrame(id, wire.TypeError,
			wire.ErrorResp{Code: wire.CodeInternal, Message: "error too large to send"}, sc.s.cfg.MaxFrame)
	}
	if encErr != nil {
		sc.release(reserved, btoi(slot))
		return
	}
	sc.queue(frame, reserved, slot)
}

// queue hands a frame to the writer. The frame's buffer is what it costs
// (a pooled buffer may be larger than the frame, and it is the buffer
// that is held), in place of the reservation it answers; the estimate
// learns from answers to requests only, so pings cannot talk it down.
func (sc *serverConn) queue(frame *[]byte, reserved int64, slot bool) {
	cost := int64(cap(*frame))
	if d := cost - reserved; d != 0 {
		sc.held.Add(d)
		sc.budget.add(d)
		if d < 0 {
			sc.wake()
		}
	}
	if slot {
		// Stored only when it moves: at a steady size it stays put, and
		// the handlers of a busy connection do not fight over its line.
		if est := sc.estimate.Load(); nextEstimate(est, int64(len(*frame))) != est {
			sc.estimate.Store(nextEstimate(est, int64(len(*frame))))
		}
	}
	_ = sc.w.send(frame, cost, slot)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// handshake exchanges preambles, checks the far side's hello and admits
// the connection under the cap of its class. A refusal is sent as an
// Error frame before the connection closes. It reports whether the
// connection may go on to serve requests.
func (sc *serverConn) handshake(br *bufio.Reader) bool {
	cfg := sc.s.cfg
	deadline := time.Now().Add(cfg.HandshakeTimeout)
	_ = sc.conn.SetDeadline(deadline)
	defer func() { _ = sc.conn.SetDeadline(time.Time{}) }()
	failed := func(err error) bool {
		if !sc.evicted.Load() {
			cfg.emit(EventHandshakeFailed, sc.remote, err)
		}
		return false
	}
	if _, err := sc.rw.Write(wire.Preamble[:]); err != nil {
		return failed(err)
	}
	if err := wire.ReadPreamble(br); err != nil {
		sc.refuse(err)
		return failed(err)
	}
	payload, err := wire.ReadFrame(br, maxHelloFrame)
	if err != nil {
		sc.refuse(err)
		return failed(err)
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
	case len(hello.Auth) > maxHelloAuth:
		err = fmt.Errorf("%w: a credential of %d bytes, more than %d", cairn.ErrUnauthorized, len(hello.Auth), maxHelloAuth)
	}
	if err != nil {
		sc.refuse(err)
		return failed(err)
	}
	sc.peer.Node, sc.peer.Addr, sc.peer.Auth = hello.Node, sc.remote, hello.Auth
	if hello.Node == "" && cfg.Authenticate != nil {
		principal, err := cfg.Authenticate(sc.peer)
		if err != nil {
			err = fmt.Errorf("%w: %v", cairn.ErrUnauthorized, err)
			sc.refuse(err)
			return failed(err)
		}
		sc.peer.Principal = principal
	}
	if hello.Node != "" && cfg.VerifyPeer != nil {
		// The check may wait, but leaves time to answer before the
		// handshake's deadline.
		ctx, cancel := context.WithDeadline(sc.ctx, deadline.Add(-cfg.HandshakeTimeout/4))
		verr := cfg.VerifyPeer(ctx, hello.Node, sc.conn.RemoteAddr(), sc.peer.Cert)
		cancel()
		if verr != nil {
			err := fmt.Errorf("%w: the hello names node %q: %v", cairn.ErrUnauthorized, hello.Node, verr)
			cfg.emitFor(EventPeerRefused, sc.remote, hello.Node, err)
			sc.refuse(err)
			return false
		}
	}
	if err := sc.s.admit(sc, hello.Node != ""); err != nil {
		sc.refuse(err)
		return false
	}
	frame, err := wire.AppendFrame(nil, f.ID, wire.TypeHelloOK, wire.HelloOK{Node: cfg.Node, Version: wire.Version}, maxHelloFrame)
	if err == nil {
		_, err = sc.rw.Write(frame)
	}
	if err != nil {
		return failed(err)
	}
	return true
}

func (sc *serverConn) refuse(err error) {
	frame, _ := wire.AppendFrame(nil, 0, wire.TypeError, wire.ErrorFor(err), maxHelloFrame)
	_, _ = sc.rw.Write(frame)
}

// errTLSRequired is what a far side that did not start TLS is told.
var errTLSRequired = fmt.Errorf("%w: this node accepts only TLS connections: connect with the cluster's CA and a client certificate (--certs-dir)", cairn.ErrUnauthorized)

// startTLS runs the TLS handshake of a server that speaks TLS, within
// HandshakeTimeout, and keeps the certificate the far side proved it
// holds. A far side speaking the protocol in plain text gets the
// protocol's own refusal, in plain text, so that it can say why instead of
// seeing the connection drop.
func (sc *serverConn) startTLS() bool {
	cfg := sc.s.cfg
	_ = sc.conn.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	defer func() { _ = sc.conn.SetDeadline(time.Time{}) }()
	tc := tls.Server(sc.conn, cfg.ServerTLS)
	if err := tc.HandshakeContext(sc.ctx); err != nil {
		var plain tls.RecordHeaderError
		if errors.As(err, &plain) && plain.Conn != nil {
			frame, _ := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 0, wire.TypeError, wire.ErrorFor(errTLSRequired), maxHelloFrame)
			_, _ = plain.Conn.Write(frame)
			err = fmt.Errorf("the far side does not speak TLS: %w", err)
		}
		if !sc.evicted.Load() {
			cfg.emit(EventTLSFailed, sc.remote, err)
		}
		return false
	}
	sc.rw = tc
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		sc.peer.Cert = certs[0]
	}
	return true
}
