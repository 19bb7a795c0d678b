package workers

import (
	"sync"
	"time"
)

// Pool runs serve on items of type T on long-lived goroutines. Work done on
// a fresh goroutine pays for that goroutine's stack to grow through the
// call chain (pebble's reads run deep), copying it at each doubling; a
// worker keeps the stack it grew for the next item.
//
// Go never makes an item wait for a worker: when none is parked it starts
// one, so the pool caps nothing and work that blocks on other work served
// by the same pool cannot deadlock it. Parked workers are taken last-in
// first-out, so the ones a steady load needs stay warm and the rest go
// unused and exit after idleFor.
type Pool[T any] struct {
	serve   func(T)
	idleFor time.Duration

	mu       sync.Mutex
	parked   []chan message[T] // each parked worker's inbox, the most recent last
	lowWater int               // fewest parked since the last trim: those at the bottom were not used
	trim     *time.Timer       // armed while any worker is parked
	armed    bool
	closed   bool
	live     int            // workers started and not yet exited
	started  int            // workers ever started
	wg       sync.WaitGroup // every worker
}

// message is an item for a worker, or the order to exit.
type message[T any] struct {
	item T
	stop bool
}

// New returns a pool that serves items with serve; workers that stayed
// parked for a whole idleFor period exit. The caller must Close it.
func New[T any](idleFor time.Duration, serve func(T)) *Pool[T] {
	return &Pool[T]{serve: serve, idleFor: idleFor}
}

// Go hands v to a parked worker, or to a new one when none is parked. It
// never blocks. Nothing may be handed over after Close.
func (p *Pool[T]) Go(v T) {
	p.mu.Lock()
	if n := len(p.parked); n > 0 {
		inbox := p.parked[n-1]
		p.parked[n-1] = nil
		p.parked = p.parked[:n-1]
		p.lowWater = min(p.lowWater, n-1)
		p.mu.Unlock()
		inbox <- message[T]{item: v} // buffered and empty: a parked worker's inbox holds nothing
		return
	}
	p.wg.Add(1)
	p.live++
	p.started++
	p.mu.Unlock()
	go p.work(v)
}

func (p *Pool[T]) work(v T) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
	}()
	inbox := make(chan message[T], 1)
	for {
		p.serve(v)
		if !p.park(inbox) {
			return
		}
		m := <-inbox
		if m.stop {
			return
		}
		v = m.item
	}
}

// park puts a worker that finished its item on the parked stack, or
// reports false when the pool is closed and the worker must exit.
func (p *Pool[T]) park(inbox chan message[T]) bool {
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
func (p *Pool[T]) trimIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.armed {
		return
	}
	stop := p.lowWater
	for i := range stop {
		p.parked[i] <- message[T]{stop: true}
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

// Close stops every worker once its item is done and waits for them.
func (p *Pool[T]) Close() {
	p.mu.Lock()
	p.closed = true
	if p.trim != nil {
		p.trim.Stop()
	}
	for _, inbox := range p.parked {
		inbox <- message[T]{stop: true}
	}
	p.parked = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// Counts reports the parked, live and ever started workers: for tests and
// metrics.
func (p *Pool[T]) Counts() (parked, live, started int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked), p.live, p.started
}
