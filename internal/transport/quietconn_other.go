//go:build !linux

package transport

import "net"

// quiet is the identity where the raw socket calls of quietConn are not
// written: the socket is read and written the usual way.
func quiet(c net.Conn) net.Conn { return c }

type quietConn struct{ net.Conn }

func (c *quietConn) writeBuffers(v *net.Buffers) (int64, error) { return v.WriteTo(c.Conn) }
