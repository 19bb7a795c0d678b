package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
)

// DialError says a call failed before its request could have reached the
// far side: connecting, the preamble or the handshake failed. Only such a
// call is safe to send elsewhere without risking a write applied twice.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// IsDialError reports whether err is (or wraps) a DialError.
func IsDialError(err error) bool {
	var de *DialError
	return errors.As(err, &de)
}

// ErrPoolClosed is returned by calls on a closed Pool.
var ErrPoolClosed = errors.New("connection pool closed")

// Pool keeps multiplexed connections to many addresses. Calls to one address
// share ConnsPerAddr connections, each carrying any number of requests at
// once.
type Pool struct {
	cfg    Config
	ctx    context.Context // ends at Close; bounds dials and connection goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	slots  map[string][]*slot
	all    map[*clientConn]struct{} // every open connection, in a slot or draining
	closed bool
	rr     atomic.Uint64

	traffic Traffic
	// maxFrame starts at cfg.MaxFrame and only grows (RaiseMaxFrame): a
	// client learns the nodes' limit after its first call.
	maxFrame atomic.Int64
}

// slot is one of an address's connections: established, being dialled, or
// neither.
type slot struct {
	conn    *clientConn
	dialing chan struct{} // closed when the dial in progress ends
	dialErr error
}

// NewPool returns an empty pool; connections are made on first use.
func NewPool(cfg Config) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{cfg: cfg.withDefaults(), ctx: ctx, cancel: cancel, slots: make(map[string][]*slot), all: make(map[*clientConn]struct{})}
	p.maxFrame.Store(int64(p.cfg.MaxFrame))
	return p
}

// RaiseMaxFrame lets the pool's connections, open and future, send and
// read frames of up to n bytes, when n is above the current limit. A
// client raises it to what the nodes say they may send: a node's limit
// grows with its value and object limits, and an answer the client could
// not read would close the connection under every call on it.
func (p *Pool) RaiseMaxFrame(n int) {
	for {
		cur := p.maxFrame.Load()
		if int64(n) <= cur || p.maxFrame.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// MaxFrame is the pool's current frame limit.
func (p *Pool) MaxFrame() int { return int(p.maxFrame.Load()) }

// Call sends one request to addr and decodes the answer into resp (which
// may be nil to discard it). An Error answer comes back as the error it
// names (errors.Is works with package cairn's sentinels). ctx bounds the
// whole call, connecting included.
func (p *Pool) Call(ctx context.Context, addr string, t wire.Type, req, resp any) error {
	cc, err := p.conn(ctx, addr)
	if err != nil {
		return err
	}
	return cc.call(ctx, t, req, resp)
}

// conn returns a live connection to addr, dialling one when the chosen slot
// has none. Concurrent callers share one dial.
func (p *Pool) conn(ctx context.Context, addr string) (*clientConn, error) {
	i := int(p.rr.Add(1) % uint64(p.cfg.ConnsPerAddr))
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &DialError{Addr: addr, Err: ErrPoolClosed}
		}
		slots := p.slots[addr]
		if slots == nil {
			slots = make([]*slot, p.cfg.ConnsPerAddr)
			for j := range slots {
				slots[j] = &slot{}
			}
			p.slots[addr] = slots
		}
		s := slots[i]
		if s.conn != nil && s.conn.usable(p.cfg.IdleTimeout/2) {
			cc := s.conn
			p.mu.Unlock()
			return cc, nil
		}
		// A connection still in the slot is broken, suspect (see call), or
		// idle long enough that the server may be about to close it: new
		// calls go to a new connection, and the old one closes once its
		// calls are done. It is drained after p.mu is released, because
		// closing a connection takes p.mu.
		stale := s.conn
		s.conn = nil
		if s.dialing == nil {
			s.dialing = make(chan struct{})
			s.dialErr = nil
			p.wg.Add(1)
			go p.dial(addr, s)
		}
		dialing := s.dialing
		p.mu.Unlock()
		if stale != nil {
			stale.drain()
		}
		select {
		case <-dialing:
		case <-ctx.Done():
			return nil, &DialError{Addr: addr, Err: callCtxErr(ctx)}
		}
		p.mu.Lock()
		cc, err := s.conn, s.dialErr
		p.mu.Unlock()
		if err != nil {
			return nil, &DialError{Addr: addr, Err: err}
		}
		if cc != nil {
			return cc, nil
		}
	}
}

// dial connects one slot. It runs on the pool's own goroutine and deadline,
// so a caller giving up does not fail the dial for the callers waiting on
// it.
func (p *Pool) dial(addr string, s *slot) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	defer cancel()
	cc, err := p.connect(ctx, addr)
	if err != nil {
		p.cfg.emit(EventDialFailed, addr, err)
	}
	p.mu.Lock()
	var late *clientConn // made after Close: nobody may use it
	if p.closed {
		// Whatever the dial's own outcome, Close is why it ended.
		late, cc, err = cc, nil, ErrPoolClosed
	}
	if cc != nil {
		p.all[cc] = struct{}{}
	}
	s.conn, s.dialErr = cc, err
	close(s.dialing)
	s.dialing = nil
	p.mu.Unlock()
	if late != nil {
		late.retire()
	}
}

func (p *Pool) connect(ctx context.Context, addr string) (*clientConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c = quiet(c)
	if p.cfg.ClientTLS != nil {
		if c, err = p.startTLS(ctx, c, addr); err != nil {
			return nil, err
		}
	}
	br := bufio.NewReaderSize(c, 32<<10)
	if err := p.handshake(ctx, c, br); err != nil {
		_ = c.Close()
		return nil, err
	}
	cc := &clientConn{pool: p, addr: addr, conn: c, br: br, pending: make(map[uint64]chan wire.Frame), done: make(chan struct{})}
	cc.touch()
	cc.w = newWriter(c, p.cfg.WriteTimeout, func(err error) { cc.fail(err) })
	cc.w.sent = &p.traffic.sent
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		cc.w.run()
	}()
	go func() {
		defer p.wg.Done()
		cc.readLoop()
	}()
	return cc, nil
}

// startTLS runs the TLS handshake of a new connection to addr, within
// HandshakeTimeout and ctx; it closes the connection when it fails.
func (p *Pool) startTLS(ctx context.Context, c net.Conn, addr string) (net.Conn, error) {
	cfg, err := p.cfg.ClientTLS(addr)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS configuration for %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.HandshakeTimeout)
	defer cancel()
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		var plain tls.RecordHeaderError
		if errors.As(err, &plain) {
			return nil, fmt.Errorf("%w: %s does not speak TLS (is the node running without --certs-dir?): %v", cairn.ErrProtocol, addr, err)
		}
		return nil, fmt.Errorf("%w: TLS handshake with %s: %v", cairn.ErrUnauthorized, addr, err)
	}
	return tc, nil
}

func (p *Pool) handshake(ctx context.Context, c net.Conn, br *bufio.Reader) error {
	deadline := time.Now().Add(p.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	// Close ends a handshake at once rather than after HandshakeTimeout.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer func() {
		stop()
		_ = c.SetDeadline(time.Time{})
	}()
	hello, err := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 0, wire.TypeHello,
		wire.Hello{Cluster: p.cfg.Cluster, Node: p.cfg.Node, Auth: p.cfg.Auth}, maxHelloFrame)
	if err != nil {
		return err
	}
	if _, err := c.Write(hello); err != nil {
		return err
	}
	if err := wire.ReadPreamble(br); err != nil {
		return err
	}
	payload, err := wire.ReadFrame(br, maxHelloFrame)
	if err != nil {
		return err
	}
	f, err := wire.ParseFrame(payload)
	if err != nil {
		return err
	}
	switch f.Type {
	case wire.TypeHelloOK:
		return nil
	case wire.TypeError:
		var e wire.ErrorResp
		if err := wire.Decode(f.Body, &e); err != nil {
			return err
		}
		return e.Err()
	}
	return fmt.Errorf("%w: handshake answered with %v", cairn.ErrProtocol, f.Type)
}

// Drain moves every connection to addr out of use: new calls get fresh
// connections, and the old ones close when the calls on them end. A caller
// that learns a peer was unreachable for a while (it was partitioned away,
// or paused) drains it, because connections that lived through the outage
// may be wedged in TCP's retransmission backoff.
func (p *Pool) Drain(addr string) {
	p.mu.Lock()
	var old []*clientConn
	for cc := range p.all {
		if cc.addr == addr {
			old = append(old, cc)
		}
	}
	for _, s := range p.slots[addr] {
		s.conn = nil
	}
	p.mu.Unlock()
	for _, cc := range old {
		cc.drain()
	}
}

// Close ends every connection; calls in flight fail with ErrUnavailable.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := make([]*clientConn, 0, len(p.all))
	for cc := range p.all {
		conns = append(conns, cc)
	}
	for _, slots := range p.slots {
		for _, s := range slots {
			s.conn = nil
		}
	}
	p.mu.Unlock()
	p.cancel()
	for _, cc := range conns {
		cc.retire()
	}
	p.wg.Wait()
	return nil
}

// clientConn is one multiplexed connection of a pool.
type clientConn struct {
	pool *Pool
	addr string
	conn net.Conn
	br   *bufio.Reader
	w    *writer

	mu       sync.Mutex
	pending  map[uint64]chan wire.Frame
	nextID   uint64
	err      error // why the connection ended; set once
	done     chan struct{}
	lastUsed atomic.Int64 // unix nanoseconds
	lastRead atomic.Int64 // unix nanoseconds of the last frame received
	// draining is set when no new call may use the connection: it closes
	// once the calls on it are done.
	draining atomic.Bool
}

// quietLimit is how long a connection may stay silent under a call that
// timed out before it is suspected dead. A peer that was cut off by a
// partition leaves its connections in TCP's retransmission backoff, which
// can outlast the partition by minutes: every call on them would time out.
// A suspected connection takes no new calls (the pool dials a fresh one)
// and closes when the calls already on it end.
const quietLimit = time.Second

func (cc *clientConn) touch() { cc.lastUsed.Store(time.Now().UnixNano()) }

// usable reports whether new calls may go on this connection: it is open,
// not draining, and busy or recently used.
func (cc *clientConn) usable(maxIdle time.Duration) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil || cc.draining.Load() {
		return false
	}
	return len(cc.pending) > 0 || time.Since(time.Unix(0, cc.lastUsed.Load())) < maxIdle
}

// drain stops new calls on the connection and closes it once the calls on
// it are done.
func (cc *clientConn) drain() {
	cc.draining.Store(true)
	cc.closeIfDrained()
}

func (cc *clientConn) closeIfDrained() {
	if !cc.draining.Load() {
		return
	}
	cc.mu.Lock()
	idle := len(cc.pending) == 0
	cc.mu.Unlock()
	if idle {
		cc.retire()
	}
}

// retire closes the connection for new calls; calls in flight get their
// answers if they arrive before the socket closes, which is at once: a
// retired connection is one nobody should be waiting on.
func (cc *clientConn) retire() { cc.fail(errRetired) }

var errRetired = errors.New("connection retired")

// fail takes p.mu: it must never be called, directly or through drain,
// retire or closeIfDrained, with p.mu held.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	close(cc.done)
	cc.mu.Unlock()
	_ = cc.conn.Close()
	p := cc.pool
	p.mu.Lock()
	delete(p.all, cc)
	p.mu.Unlock()
}

func (cc *clientConn) readLoop() {
	defer cc.w.close()
	for {
		payload, err := wire.ReadFrame(cc.br, cc.pool.MaxFrame())
		if err != nil {
			cc.fail(err)
			return
		}
		cc.pool.traffic.frameReceived(payload)
		f, err := wire.ParseFrame(payload)
		if err != nil {
			cc.fail(err)
			return
		}
		cc.lastRead.Store(time.Now().UnixNano())
		cc.mu.Lock()
		ch, ok := cc.pending[f.ID]
		delete(cc.pending, f.ID)
		cc.mu.Unlock()
		if ok {
			ch <- f // buffered: never blocks
		} else if err := f.CheckBody(); err != nil {
			// Nobody decodes this answer, so check here what
			// ParseFrame left to the decoder.
			cc.fail(err)
			return
		} else if f.ID == 0 && f.Type == wire.TypeError {
			// The server's last word before closing the connection.
			var e wire.ErrorResp
			if wire.Decode(f.Body, &e) == nil {
				cc.fail(e.Err())
				return
			}
		}
		// Otherwise the answer to a call that gave up: drop it.
	}
}

func (cc *clientConn) call(ctx context.Context, t wire.Type, req, resp any) error {
	start := time.Now()
	cc.lastUsed.Store(start.UnixNano())
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return cc.lostErr(err)
	}
	cc.nextID++
	id := cc.nextID
	ch := replyChans.Get().(chan wire.Frame)
	cc.pending[id] = ch
	cc.mu.Unlock()
	defer cc.closeIfDrained()

	frame, err := encodeFrame(id, t, req, cc.pool.MaxFrame())
	if err != nil {
		cc.forget(id, ch)
		return err
	}
	if err := cc.w.send(frame, 0, false); err != nil {
		cc.forget(id, ch)
		return cc.lostErr(err)
	}
	select {
	case f := <-ch:
		replyChans.Put(ch)
		return cc.decodeAnswer(f, t, resp)
	case <-ctx.Done():
		cc.forget(id, ch)
		if quiet := time.Since(time.Unix(0, max(cc.lastRead.Load(), start.UnixNano()))); quiet >= quietLimit {
			cc.draining.Store(true)
		}
		return fmt.Errorf("%v to %s: %w", t, cc.addr, callCtxErr(ctx))
	case <-cc.done:
		if !cc.forget(id, ch) {
			// The answer raced the failure: the read loop took the call
			// and sends its answer without waiting on anything.
			f := <-ch
			replyChans.Put(ch)
			return cc.decodeAnswer(f, t, resp)
		}
		cc.mu.Lock()
		err := cc.err
		cc.mu.Unlock()
		return cc.lostErr(err)
	}
}

// replyChans recycles the channels calls wait for their answers on.
var replyChans = sync.Pool{New: func() any { return make(chan wire.Frame, 1) }}

// forget withdraws a call that stops waiting, and reports whether it was
// still pending. Its channel is recycled only then: once the read loop has
// taken a call, an answer may still be sent on the channel.
func (cc *clientConn) forget(id uint64, ch chan wire.Frame) bool {
	cc.mu.Lock()
	_, pending := cc.pending[id]
	delete(cc.pending, id)
	cc.mu.Unlock()
	if pending {
		replyChans.Put(ch)
	}
	return pending
}

// lostErr describes a call that may or may not have reached the far side
// because the connection ended under it.
func (cc *clientConn) lostErr(err error) error {
	if errors.Is(err, cairn.ErrOverloaded) || errors.Is(err, cairn.ErrProtocol) {
		return fmt.Errorf("connection to %s closed: %w", cc.addr, err)
	}
	return fmt.Errorf("%w: connection to %s lost: %v", cairn.ErrUnavailable, cc.addr, err)
}

// callCtxErr turns a call's context ending into cairn's vocabulary: a
// deadline is a timeout; a cancellation stays a cancellation.
func callCtxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", cairn.ErrTimeout, ctx.Err())
	}
	return ctx.Err()
}

// decodeAnswer decodes an answer into resp. An answer whose body breaks
// the framing rules (which ParseFrame leaves to the decoder for the
// request path's types) fails the connection, as a bad frame does.
func (cc *clientConn) decodeAnswer(f wire.Frame, t wire.Type, resp any) error {
	err := decodeAnswer(f, t, resp)
	if err != nil {
		if perr := f.CheckBody(); perr != nil {
			cc.fail(perr)
		}
	}
	return err
}

func decodeAnswer(f wire.Frame, t wire.Type, resp any) error {
	switch f.Type {
	case wire.TypeError:
		var e wire.ErrorResp
		if err := wire.Decode(f.Body, &e); err != nil {
			return fmt.Errorf("%w: undecodable error answer: %v", cairn.ErrProtocol, err)
		}
		return e.Err()
	case t + 1:
		if resp == nil {
			return f.CheckBody()
		}
		if err := wire.Decode(f.Body, resp); err != nil {
			return fmt.Errorf("%w: %v answer: %v", cairn.ErrProtocol, t, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %v answered with %v", cairn.ErrProtocol, t, f.Type)
}
