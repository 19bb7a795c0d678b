package transport

import (
	"sync"
	"time"

	"github.com/cairnkv/cairn/internal/wire"
)

// workerIdle is the period of the pool's trim: a worker parked for a whole
// period exits at its end, so between one and two periods after its last
// request. Long enough to outlast the gaps of a steady load, short enough
// that the workers of a burst do not linger.
const workerIdle = 10 * time.Second

// request is one frame for a worker to serve. The zero request tells a
// parked worker to exit.
type request struct {
	sc *serverConn
	f  wire.Frame
}

// workerPool serves requests on long-lived goroutines. A request served on
// a fresh goroutine pays for that goroutine's stack to grow through the
// handler's call chain (pebble's reads run deep), copying it at each
// doubling; a worker keeps the stack it grew for the next request.
//
// The pool never makes a request wait for a worker: when none is parked it
// starts one, so it caps nothing (the server's per-connection in-flight
// limit does) and a handler that blocks on a peer that calls back cannot
// deadlock it. Parked workers are taken last-in first-out, so the ones a
// steady load needs stay warm and the rest go unused until the trim stops
// them.
type workerPool struct {
	serve   func(request)
	idleFor time.Duration

	mu       sync.Mutex
	parked   []chan request // each parked worker's inbox, the most recent last
	lowWater int            // fewest parked since the last trim: those at the bottom were not used
	trim     *time.Timer    // armed while any worker is parked
	armed    bool
	closed   bool
	live     int            // workers started and not yet exited
	started  int            // workers ever started
	wg       sync.WaitGroup // every worker
}

func newWorkerPool(idleFor time.Duration, serve func(request)) *workerPool {
	return &workerPool{serve: serve, idleFor: idleFor}
}

// dispatch hands r to a parked worker, or to a new one when none is
// parked. It never blocks.
func (p *workerPool) dispatch(r request) {
	p.mu.Lock()
	if n := len(p.parked); n > 0 {
		inbox := p.parked[n-1]
		p.parked[n-1] = nil
		p.parked = p.parked[:n-1]
		p.lowWater = min(p.lowWater, n-1)
		p.mu.Unlock()
		inbox <- r // buffered and empty: a parked worker's inbox holds nothing
		return
	}
	p.wg.Add(1)
	p.live++
	p.started++
	p.mu.Unlock()
	go p.work(r)
}

func (p *workerPool) work(r request) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
	}()
	inbox := make(chan request, 1)
	for r.sc != nil {
		p.serve(r)
		if !p.park(inbox) {
			return
		}
		r = <-inbox
	}
}

// park puts a worker that finished its request on the parked stack, or
// reports false when the pool is closed and the worker must exit.
func (p *workerPool) park(inbox chan request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.parked = append(p.parked, inbox)
	if !p.armed {
		p.armed = true
		p.lowWater = len(p.parked)
		if p.trim == nil {
			p.trim = time.AfterFunc(p.idleFor, p.trimIdle)
		} else {
			p.trim.Reset(p.idleFor)
		}
	}
	return true
}

// trimIdle stops the workers that stayed parked for a whole period: with
// last-in first-out reuse, those are the lowWater at the bottom.
func (p *workerPool) trimIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.armed {
		return
	}
	stop := p.lowWater
	for i := range stop {
		p.parked[i] <- request{}
	}
	n := copy(p.parked, p.parked[stop:])
	clear(p.parked[n:])
	p.parked = p.parked[:n]
	p.lowWater = n
	if n > 0 {
		p.trim.Reset(p.idleFor)
	} else {
		p.armed = false
	}
}

// close stops every worker once its request is done and waits for them.
// Nothing may be dispatched after close.
func (p *workerPool) close() {
	p.mu.Lock()
	p.closed = true
	if p.trim != nil {
		p.trim.Stop()
	}
	for _, inbox := range p.parked {
		inbox <- request{}
	}
	p.parked = nil
	p.mu.Unlock()
	p.wg.Wait()
}
