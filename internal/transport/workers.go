package transport

import (
	"time"

	"github.com/cairnkv/cairn/internal/wire"
)

// workerIdle is the period of the worker pool's trim: a worker parked for
// a whole period exits at its end, so between one and two periods after
// its last request. Long enough to outlast the gaps of a steady load,
// short enough that the workers of a burst do not linger.
const workerIdle = 10 * time.Second

// request is one frame for a worker to serve, and the bytes it was
// reserved when it was read (see serverConn.held).
type request struct {
	sc       *serverConn
	f        wire.Frame
	reserved int64
}
