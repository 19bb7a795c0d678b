package store

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// directFile writes and syncs a file with raw system calls. An ordinary
// system call enters the Go scheduler, which wakes the runtime's monitor
// thread (sysmon) if it sleeps and sets it polling every 20 µs while the
// call lasts, and lets that thread hand the processor to another thread
// once the call has taken 20 µs. On a WAL synced for every group of
// writes that was a large share of a node's context switches, and of its
// CPU on machines where a switch is dear (docs/PERFORMANCE.md). The calls
// go through the file's syscall.RawConn, so that a Close cannot recycle
// the descriptor under them.
type directFile struct {
	name string
	raw  syscall.RawConn
}

// directCalls returns the direct calls of f, or nil when f is not an
// operating system file (an in-memory filesystem's).
func directCalls(f vfs.File) *directFile {
	sc, ok := f.(interface {
		SyscallConn() (syscall.RawConn, error)
		Name() string
	})
	if !ok || f.Fd() == vfs.InvalidFd {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &directFile{name: sc.Name(), raw: raw}
}

// write writes all of p at the file's offset, as os.File.Write does.
func (d *directFile) write(p []byte) (int, error) {
	n := 0
	var errno syscall.Errno
	err := d.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			if e == syscall.EINTR {
				continue
			}
			if e != 0 || r == 0 {
				errno = e
				return true
			}
			n += int(r)
		}
		return true
	})
	switch {
	case err != nil:
	case errno != 0:
		err = errno
	case n < len(p):
		err = io.ErrShortWrite
	default:
		return n, nil
	}
	return n, &os.PathError{Op: "write", Path: d.name, Err: err}
}

func (d *directFile) syncData() error {
	var errno syscall.Errno
	err := d.raw.Write(func(fd uintptr) bool {
		for {
			_, _, e := syscall.RawSyscall(syscall.SYS_FDATASYNC, fd, 0, 0)
			if e != syscall.EINTR {
				errno = e
				return true
			}
		}
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: d.name, Err: err}
	}
	return nil
}
