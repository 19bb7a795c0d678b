package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// quietConn reads and writes a TCP socket with raw system calls. The
// socket is non-blocking, so they return at once, with EAGAIN when they
// cannot go on, and then the netpoller waits for the socket as it does for
// any net.Conn, deadlines included. What they skip is the runtime's entry
// into a blocking system call, which wakes its monitor thread (sysmon)
// when it sleeps and sets it polling every 20 µs for the next millisecond.
// Paid on every message, those polls made up a large share of the context
// switches of a node and of a client (docs/PERFORMANCE.md).
//
// Only the socket's reads and writes take this path: deadlines, Close and
// the rest are the *net.TCPConn's own.
type quietConn struct {
	*net.TCPConn
	raw syscall.RawConn
	r   quietRead
	w   quietWrite
}

// quietRead and quietWrite hold what a read or a write passes to and gets
// back from its callback, with the callback bound once, so that a call on
// a busy connection allocates nothing (a closure per call would move its
// captures to the heap). Each is held for its whole call, as the socket's
// own read and write locks are.
type quietRead struct {
	mu    sync.Mutex
	b     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

type quietWrite struct {
	mu     sync.Mutex
	v      *net.Buffers
	one    net.Buffers // Write's buffer, over single
	single [1][]byte
	iov    []syscall.Iovec // writev's vector, kept between calls
	total  int64
	errno  syscall.Errno
	fn     func(fd uintptr) bool
}

// quiet wraps c when it is a TCP socket; any other conn is returned as is.
func quiet(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quietConn{TCPConn: tc, raw: raw}
	q.r.fn, q.w.fn = q.readOnce, q.writeOnce
	return q
}

func (c *quietConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.r.mu.Lock()
	c.r.b, c.r.n, c.r.errno = b, 0, 0
	err := c.raw.Read(c.r.fn)
	n, errno := c.r.n, c.r.errno
	c.r.b = nil
	c.r.mu.Unlock()
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	raceAcquireIO()
	return n, nil
}

// readOnce is Read's callback: it reports false to have the poller wait.
func (c *quietConn) readOnce(fd uintptr) bool {
	b := c.r.b
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.r.n, c.r.errno = int(r), e
		return true
	}
}

func (c *quietConn) Write(b []byte) (int, error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.w.single[0] = b
	c.w.one = c.w.single[:]
	n, err := c.writeBuffersLocked(&c.w.one)
	c.w.single[0] = nil
	return int(n), err
}

// maxIOV is the most buffers one writev takes (Linux's IOV_MAX).
const maxIOV = 1024

// writeBuffers writes all of *v with as few writevs as the socket allows
// and consumes what it wrote from *v, as net.Buffers.WriteTo does.
func (c *quietConn) writeBuffers(v *net.Buffers) (int64, error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.writeBuffersLocked(v)
}

func (c *quietConn) writeBuffersLocked(v *net.Buffers) (int64, error) {
	raceReleaseIO()
	c.w.v, c.w.total, c.w.errno = v, 0, 0
	err := c.raw.Write(c.w.fn)
	total, errno := c.w.total, c.w.errno
	// Keep no reference to buffers that go back to their pools.
	c.w.v = nil
	clear(c.w.iov)
	return total, c.writeError(err, errno)
}

// writeOnce is writeBuffers' callback: it writes until *c.w.v is empty,
// and reports false to have the poller wait.
func (c *quietConn) writeOnce(fd uintptr) bool {
	v := c.w.v
	for {
		c.w.iov = c.w.iov[:0]
		for _, b := range *v {
			if len(b) == 0 {
				continue
			}
			iov := syscall.Iovec{Base: &b[0]}
			iov.SetLen(len(b))
			if c.w.iov = append(c.w.iov, iov); len(c.w.iov) == maxIOV {
				break
			}
		}
		if len(c.w.iov) == 0 {
			*v = (*v)[:0]
			return true
		}
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&c.w.iov[0])), uintptr(len(c.w.iov)))
		switch e {
		case 0:
			c.w.total += int64(r)
			consume(v, int64(r))
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.w.errno = e
			return true
		}
	}
}

// consume drops the first n bytes of *v.
func consume(v *net.Buffers, n int64) {
	for len(*v) > 0 && n > 0 {
		if l := int64(len((*v)[0])); l <= n {
			n -= l
			(*v)[0] = nil
			*v = (*v)[1:]
			continue
		}
		(*v)[0] = (*v)[0][n:]
		return
	}
	for len(*v) > 0 && len((*v)[0]) == 0 {
		*v = (*v)[1:]
	}
}

func (c *quietConn) writeError(err error, errno syscall.Errno) error {
	switch {
	case err != nil:
		return c.opError("write", err)
	case errno != 0:
		return c.opError("write", os.NewSyscallError("write", errno))
	}
	return nil
}

// opError shapes an error as the socket's own Read and Write do, so that
// errors.Is (os.ErrDeadlineExceeded, net.ErrClosed) and net.Error's
// Timeout see through it. The poller's errors come wrapped for a "raw"
// operation; it is unwrapped to name the read or write.
func (c *quietConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
