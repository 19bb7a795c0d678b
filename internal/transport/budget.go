package transport

import "sync/atomic"

// budget is a server's allowance of bytes held by requests being served
// and answers not yet written, shared by a class of connections (clients,
// or peers). Admission is checked against it; what a request turns out to
// cost once answered is added without a check, because the work is done
// by then and refusing its answer would only waste it.
type budget struct {
	limit int64
	used  atomic.Int64
}

// tryAcquire takes n bytes when they fit. A request larger than the whole
// budget is admitted only when nothing else is in flight, so it is served
// eventually without ever sharing the node with others.
func (b *budget) tryAcquire(n int64) bool {
	for {
		u := b.used.Load()
		if u > 0 && u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// add changes the bytes in use by n (negative to release).
func (b *budget) add(n int64) { b.used.Add(n) }

// Reservations. A request's answer size is unknown when it is read, yet
// it is the answer that costs memory (a get of a large value is a few
// bytes in and megabytes out). A request is therefore counted, until its
// answer exists, at its own size or at what its connection's answers have
// cost lately, whichever is more; then at its answer's size until that is
// written. The estimate starts at a sixteenth of the connection's cap, so
// a fresh connection has at most 16 requests in flight until its answers
// show they are small; a large answer raises it at once, and each smaller
// one lowers it by an eighth, so a connection of small answers soon
// pipelines up to MaxInFlight again.
const (
	initialEstimateShift = 4       // MaxConnBytes >> 4
	minEstimate          = 1 << 10 // below this, MaxInFlight is the bound
)

// nextEstimate folds an answer of n bytes into the estimate est.
func nextEstimate(est, n int64) int64 {
	return max(n, est-est/8, minEstimate)
}
