package transport

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/internal/wire"
)

// framePool recycles encoded frames once written; large ones are left to
// the garbage collector so one big value does not pin memory. A frame
// travels as the pool's own *[]byte from encoding to the writer and back,
// so recycling it allocates nothing.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledFrame = 64 << 10

func putFrameBuf(b *[]byte) {
	if cap(*b) <= maxPooledFrame {
		framePool.Put(b)
	}
}

// encodeFrame encodes a frame into a pooled buffer.
func encodeFrame(id uint64, t wire.Type, body any, limit int) (*[]byte, error) {
	b := framePool.Get().(*[]byte)
	frame, err := wire.AppendFrame((*b)[:0], id, t, body, limit)
	*b = frame
	if err != nil {
		putFrameBuf(b)
		return nil, err
	}
	return b, nil
}

// writer owns the write side of a connection. Frames are queued by any
// goroutine and written by one, in batches: everything queued while the
// previous batch was being written, or while the writer yielded to the
// goroutines ready to run before it, goes out in one writev. There is no
// flush timer: a batch is written as soon as the writer gets a processor,
// so latency is never traded for batching beyond work already waiting.
type writer struct {
	conn    net.Conn
	timeout time.Duration

	mu     sync.Mutex
	queue  []queued
	err    error // set once the connection failed or the writer stopped
	wake   chan struct{}
	stop   chan struct{} // closed to ask the writer to drain and exit
	done   chan struct{} // closed when the writer has exited
	onFail func(error)   // told once when a write fails
	iov    net.Buffers   // reused for each batch's writev
	out    net.Buffers   // what of iov remains to be written
	// flat, for a connection that cannot take a writev (TLS), gathers a
	// batch into one write, so it still goes out as one record and one
	// system call instead of one per frame.
	flat []byte

	sent *atomic.Uint64 // counts the bytes written, when set
	// release, when set, is given back what the frames of a batch cost
	// and the request slots they held, once the batch is written or
	// dropped: every frame queued is released exactly once.
	release func(cost int64, slots int)
}

// queued is a frame waiting for the writer, with what it costs its
// connection until it is written (see serverConn.held) and whether it
// answers a request whose slot it holds.
type queued struct {
	buf  *[]byte
	cost int64
	slot bool
}

// errWriterStopped is what send returns once the connection is closing.
var errWriterStopped = errors.New("connection closing")

func newWriter(conn net.Conn, timeout time.Duration, onFail func(error)) *writer {
	return &writer{conn: conn, timeout: timeout, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), onFail: onFail}
}

// send queues an encoded frame; the writer takes ownership of it, and of
// its cost and slot, which are released once it is written or dropped.
func (w *writer) send(frame *[]byte, cost int64, slot bool) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		putFrameBuf(frame)
		w.releaseOne(cost, slot)
		return err
	}
	w.queue = append(w.queue, queued{buf: frame, cost: cost, slot: slot})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// close asks the writer to write what is queued and exit, and waits for it.
func (w *writer) close() {
	w.mu.Lock()
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *writer) releaseOne(cost int64, slot bool) {
	if w.release != nil && (cost != 0 || slot) {
		slots := 0
		if slot {
			slots = 1
		}
		w.release(cost, slots)
	}
}

// releaseAll releases the frames of q and recycles their buffers.
func (w *writer) releaseAll(q []queued) {
	var cost int64
	slots := 0
	for i, f := range q {
		putFrameBuf(f.buf)
		cost += f.cost
		if f.slot {
			slots++
		}
		q[i] = queued{}
	}
	if w.release != nil && (cost != 0 || slots > 0) {
		w.release(cost, slots)
	}
}

func (w *writer) run() {
	defer close(w.done)
	var batch []queued
	for {
		stopping := false
		select {
		case <-w.wake:
			// The goroutine that woke the writer put it first in line on
			// its processor, ahead of the goroutines already runnable
			// there, which are often about to queue frames of their own.
			// Letting them run first turns a writev per frame into one
			// per batch; when nothing else is runnable it costs nothing.
			runtime.Gosched()
		case <-w.stop:
			stopping = true
		}
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		if stopping {
			w.err = errWriterStopped
		}
		w.mu.Unlock()
		if len(batch) > 0 {
			if err := w.write(batch); err != nil {
				w.fail(err)
				return
			}
		}
		if stopping {
			return
		}
	}
}

// buffersWriter is a connection that writes a vector of buffers in one
// system call where it can (quietConn's writev), as *net.TCPConn does for
// net.Buffers.WriteTo.
type buffersWriter interface {
	writeBuffers(v *net.Buffers) (int64, error)
}

func (w *writer) write(batch []queued) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	vw, vectored := w.conn.(buffersWriter)
	if _, tcp := w.conn.(*net.TCPConn); !tcp && !vectored && len(batch) > 1 {
		return w.writeFlat(batch)
	}
	w.iov = w.iov[:0]
	for _, f := range batch {
		w.iov = append(w.iov, *f.buf)
	}
	// Writing consumes the slice it is given: it gets a copy of the
	// header, so w.iov keeps its array for the next batch.
	w.out = w.iov
	var n int64
	var err error
	if vectored {
		n, err = vw.writeBuffers(&w.out)
	} else {
		n, err = w.out.WriteTo(w.conn)
	}
	if w.sent != nil {
		w.sent.Add(uint64(n))
	}
	clear(w.iov)
	// Released only now: a request holds its slot and its answer's bytes
	// until the answer is in the socket, so a client that does not read
	// keeps its connection at its cap instead of emptying it into the
	// writer's queue.
	w.releaseAll(batch)
	return err
}

// maxFlat bounds the batch writeFlat copies into one buffer; the frames
// beyond it go in further writes, and the buffer kept between batches
// stays this small.
const maxFlat = 256 << 10

func (w *writer) writeFlat(batch []queued) error {
	var err error
	var n int
	for i := 0; i < len(batch) && err == nil; {
		w.flat = w.flat[:0]
		for ; i < len(batch) && (len(w.flat) == 0 || len(w.flat)+len(*batch[i].buf) <= maxFlat); i++ {
			w.flat = append(w.flat, *batch[i].buf...)
		}
		n, err = w.conn.Write(w.flat)
		if w.sent != nil {
			w.sent.Add(uint64(n))
		}
	}
	if cap(w.flat) > maxFlat {
		w.flat = nil
	}
	w.releaseAll(batch)
	return err
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil || w.err == errWriterStopped {
		w.err = err
	}
	q := w.queue
	w.queue = nil
	w.mu.Unlock()
	w.releaseAll(q)
	if w.onFail != nil {
		w.onFail(err)
	}
}
