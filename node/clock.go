package node

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn"
)

// maxStampAhead bounds how far past this node's wall clock a client's
// context may put a write's stamp when no copy of the key vouches for it.
// An honest context's stamp is a write some node stamped, so it is ahead
// only by the skew between two nodes' clocks; a forged one could pin a
// last-write-wins key, every later write stamped below it losing, until
// the clocks pass it. An hour bounds that, and is far beyond any skew a
// clock kept by NTP shows.
const maxStampAhead = time.Hour

// hlc is the node's hybrid logical clock: it stamps every write this node
// coordinates (dvv.Sibling.WrittenAt). Each tick is the wall clock, or one
// nanosecond past the last tick when the wall clock stands still or went
// back, so the node's stamps only grow. A write's stamp is then raised
// past every stamp the key's copy holds and the client's context names
// (stamp's floor), so a write that follows another, through its context
// or on the same copy, is stamped later than it whatever the clocks say:
// last-write-wins then keeps it (dvv.SyncLWW).
//
// The floors are not fed back into the node's clock, as a classic HLC
// would: a key's order needs only its own floor, and a node whose clock
// is far ahead then drags only the keys it wrote, not every write of
// every node that saw one of them.
type hlc struct {
	wall func() time.Time
	last atomic.Int64
}

func newHLC(wall func() time.Time) *hlc {
	if wall == nil {
		wall = time.Now
	}
	return &hlc{wall: wall}
}

// now reads the wall clock the ticks start from.
func (c *hlc) now() int64 { return c.wall().UnixNano() }

// stamp ticks the clock and returns the stamp of a write to a key whose
// copy and context have seen writes stamped up to floor: the tick, or
// floor+1 when that is later. Past the last representable nanosecond it
// stays there (the year 2262); the dot then breaks the tie.
func (c *hlc) stamp(floor int64) int64 {
	for {
		last := c.last.Load()
		tick := c.now()
		if last != math.MaxInt64 {
			tick = max(tick, last+1)
		}
		if c.last.CompareAndSwap(last, tick) {
			if floor < math.MaxInt64 {
				floor++
			}
			return max(tick, floor)
		}
	}
}

// contextStamp checks the stamp a client's context names against the
// copy's own stamp held and this node's clock: a stamp the copy has
// reached is vouched for, and so is one within maxStampAhead of the
// clock; one beyond both is refused, before anything is written.
func (c *hlc) contextStamp(stamp, held int64) error {
	if stamp <= held || stamp <= c.now()+int64(maxStampAhead) {
		return nil
	}
	ahead := time.Duration(stamp - c.now()).Round(time.Second)
	return cairn.InvalidArgument("the context's stamp is %v ahead of this node's clock, and no copy of the key holds a write that late: "+
		"read the key again for a current context, and check the nodes' clocks", ahead)
}
