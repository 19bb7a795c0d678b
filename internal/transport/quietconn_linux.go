package transport

import (
	"io"
	"net"
	"os"
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
	iov []syscall.Iovec // writev's vector, kept between calls
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
	return &quietConn{TCPConn: tc, raw: raw}
}

func (c *quietConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
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

func (c *quietConn) Write(b []byte) (int, error) {
	v := net.Buffers{b}
	n, err := c.writeBuffers(&v)
	return int(n), err
}

// maxIOV is the most buffers one writev takes (Linux's IOV_MAX).
const maxIOV = 1024

// writeBuffers writes all of *v with as few writevs as the socket allows
// and consumes what it wrote from *v, as net.Buffers.WriteTo does.
func (c *quietConn) writeBuffers(v *net.Buffers) (int64, error) {
	var total int64
	var errno syscall.Errno
	raceReleaseIO()
	// The callback runs under the socket's write lock, so c.iov is never
	// shared; it is cleared before each return so that it keeps no
	// reference to buffers that go back to their pools.
	err := c.raw.Write(func(fd uintptr) bool {
		defer clear(c.iov)
		for {
			c.iov = c.iov[:0]
			for _, b := range *v {
				if len(b) == 0 {
					continue
				}
				iov := syscall.Iovec{Base: &b[0]}
				iov.SetLen(len(b))
				if c.iov = append(c.iov, iov); len(c.iov) == maxIOV {
					break
				}
			}
			if len(c.iov) == 0 {
				*v = (*v)[:0]
				return true
			}
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&c.iov[0])), uintptr(len(c.iov)))
			switch e {
			case 0:
				total += int64(r)
				consume(v, int64(r))
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
	})
	return total, c.writeError(err, errno)
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
