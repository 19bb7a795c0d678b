package ring

import (
	"encoding/binary"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Placement is where every partition's replicas are while a membership
// change is in flight (DESIGN section 4, "Membership changes").
//
//	Cur:  the ring of the members in effect; reads are answered from it.
//	Next: the ring of the member set being moved to.
//
// For each partition p, the replicas of p in Cur are its current owners and
// those in Next its next owners. A next owner that is not a current owner
// is a target: it must receive p's data before it may answer for p. Once
// every target of p holds it, p has flipped: its reads move to Next. Until
// the change is over, writes go to both sets, so a coordinator that has not
// seen a flip yet and the owners it reads from still hold every write.
//
// A Placement is built by whoever knows which targets hold what (node, from
// the gossiped ring state) and is immutable afterwards. With no change in
// flight Next is Cur, and a Placement answers as Cur does.
type Placement struct {
	cur, next *Ring
	n         int      // replication factor asked for; each ring clamps it to its members
	flipped   []uint64 // bit p: p's reads and primaries are Next's
	flips     int
	targets   int // partitions with at least one target
	version   uint64
}

// NewPlacement builds the placement from cur to next for replication factor
// n. holds(node, p) reports whether target node confirmed it received all of
// partition p for this change; it is asked only about targets. next may be
// nil or cur: no change is in flight. Both rings must have the same Q.
func NewPlacement(cur, next *Ring, n int, holds func(node string, p uint32) bool) *Placement {
	if next == nil {
		next = cur
	}
	pl := &Placement{cur: cur, next: next, n: n, flipped: make([]uint64, (cur.partitions+63)/64)}
	for p := range uint32(cur.partitions) {
		ts := pl.Targets(p)
		if len(ts) > 0 {
			pl.targets++
		}
		all := true
		for _, t := range ts {
			if !holds(t, p) {
				all = false
				break
			}
		}
		if all {
			pl.flipped[p/64] |= 1 << (p % 64)
			pl.flips++
		}
	}
	d := xxhash.New()
	var b [8]byte
	for _, v := range []uint64{cur.version, next.version} {
		binary.LittleEndian.PutUint64(b[:], v)
		_, _ = d.Write(b[:])
	}
	for _, w := range pl.flipped {
		binary.LittleEndian.PutUint64(b[:], w)
		_, _ = d.Write(b[:])
	}
	pl.version = d.Sum64()
	return pl
}

// Cur returns the ring in effect.
func (pl *Placement) Cur() *Ring { return pl.cur }

// Next returns the ring being moved to; Cur when no change is in flight.
func (pl *Placement) Next() *Ring { return pl.next }

// Changing reports whether a change is in flight: Next differs from Cur.
func (pl *Placement) Changing() bool { return pl.cur.version != pl.next.version }

// Done reports whether every partition has flipped: the change may be
// completed by making Next the ring in effect.
func (pl *Placement) Done() bool { return pl.flips == pl.cur.partitions }

// Flips returns how many partitions have flipped, and how many had
// anything to move.
func (pl *Placement) Flips() (flipped, moving int) {
	return pl.flips - (pl.cur.partitions - pl.targets), pl.targets
}

// Version fingerprints the placement: both rings and the flips. It changes
// with every flip.
func (pl *Placement) Version() uint64 { return pl.version }

// Flipped reports whether p's reads have moved to Next. A p outside the
// ring is never flipped.
func (pl *Placement) Flipped(p uint32) bool {
	if int64(p) >= int64(pl.cur.partitions) {
		return false
	}
	return pl.flipped[p/64]&(1<<(p%64)) != 0
}

// Sources returns p's current owners (the primaries in Cur), who hold its
// data and stream it to the targets.
func (pl *Placement) Sources(p uint32) []string {
	prim, _ := pl.cur.Preference(p, pl.n)
	return prim
}

// Targets returns p's next owners that are not current owners: those that
// must receive p. None when no change is in flight.
func (pl *Placement) Targets(p uint32) []string {
	if !pl.Changing() {
		return nil
	}
	cur, _ := pl.cur.Preference(p, pl.n)
	next, _ := pl.next.Preference(p, pl.n)
	return minus(next, cur)
}

// Leaving returns p's current owners that are not next owners: those that
// hold a copy they may drop once the change is over. None when no change
// is in flight.
func (pl *Placement) Leaving(p uint32) []string {
	if !pl.Changing() {
		return nil
	}
	cur, _ := pl.cur.Preference(p, pl.n)
	next, _ := pl.next.Preference(p, pl.n)
	return minus(cur, next)
}

// Route returns the replicas a request for partition p goes to. Reads use
// primaries and fallbacks only: Cur's until p flipped, Next's after.
// Writes also go to pending: the owners on the other side of the change
// (Next's targets before the flip, Cur's leaving owners after it), which
// receive every write without counting towards W or PW. n is the
// request's replication factor; the placement's own n only decides what
// moves.
func (pl *Placement) Route(p uint32, n int) (primaries, fallbacks, pending []string) {
	in, other := pl.cur, pl.next
	if pl.Flipped(p) && pl.Changing() {
		in, other = pl.next, pl.cur
	}
	primaries, fallbacks = in.Preference(p, n)
	if !pl.Changing() {
		return primaries, fallbacks, nil
	}
	others, _ := other.Preference(p, max(n, pl.n))
	return primaries, fallbacks, minus(others, primaries)
}

// minus returns the members of a not in b, in a's order.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
