package hints

import "slices"

// Backoff is a deterministic exponential backoff: Base, doubling per
// consecutive failure, at most Max (nanoseconds).
type Backoff struct {
	Base, Max int64
	failures  int
}

// Fail records a failure and returns how long to wait before trying again.
func (b *Backoff) Fail() int64 {
	d := b.Base
	for i := 0; i < b.failures && d < b.Max; i++ {
		d *= 2
	}
	b.failures++
	return min(d, b.Max)
}

// Reset forgets the failures after a success.
func (b *Backoff) Reset() { b.failures = 0 }

// Failures is how many failures in a row were recorded.
func (b *Backoff) Failures() int { return b.failures }

// Owner is what the caller knows of one owner it holds hints for.
type Owner struct {
	Pending int  // hints not yet delivered
	Alive   bool // the owner is up, as far as the caller can tell
}

// Planner decides which owners to deliver hints to. It allows at most
// MaxConcurrent deliveries at once, one per owner, waits after a failure
// (Backoff) or when a receiver asked for time, and starts the owners with
// the most pending hints first (ties by name), so the largest backlog does
// not wait behind small ones.
type Planner struct {
	MaxConcurrent int
	BackoffBase   int64
	BackoffMax    int64
	owners        map[string]*plan
}

type plan struct {
	delivering bool
	notBefore  int64
	backoff    Backoff
}

func (p *Planner) get(owner string) *plan {
	if p.owners == nil {
		p.owners = map[string]*plan{}
	}
	st := p.owners[owner]
	if st == nil {
		st = &plan{backoff: Backoff{Base: p.BackoffBase, Max: p.BackoffMax}}
		p.owners[owner] = st
	}
	return st
}

// Plan returns the owners to start delivering to now, and marks them
// delivering. Owners absent from owners are forgotten unless a delivery to
// them is running.
func (p *Planner) Plan(now int64, owners map[string]Owner) []string {
	running := 0
	for name, st := range p.owners {
		if st.delivering {
			running++
		} else if _, known := owners[name]; !known {
			delete(p.owners, name)
		}
	}
	var ready []string
	for name, o := range owners {
		st := p.get(name)
		if o.Pending > 0 && o.Alive && !st.delivering && now >= st.notBefore {
			ready = append(ready, name)
		}
	}
	slices.SortFunc(ready, func(a, b string) int {
		if owners[a].Pending != owners[b].Pending {
			return owners[b].Pending - owners[a].Pending
		}
		if a < b {
			return -1
		}
		return 1
	})
	free := max(0, p.MaxConcurrent-running)
	ready = ready[:min(len(ready), free)]
	for _, name := range ready {
		p.owners[name].delivering = true
	}
	return ready
}

// Done records the end of a delivery round to owner. A failed round waits
// out the backoff; retryAfter (nanoseconds, from a receiver that asked for
// time) is waited out in any case.
func (p *Planner) Done(owner string, now int64, ok bool, retryAfter int64) {
	st := p.get(owner)
	st.delivering = false
	wait := retryAfter
	if ok {
		st.backoff.Reset()
	} else {
		wait = max(wait, st.backoff.Fail())
	}
	st.notBefore = now + wait
}

// Failures is how many rounds to owner failed in a row.
func (p *Planner) Failures(owner string) int {
	if st := p.owners[owner]; st != nil {
		return st.backoff.Failures()
	}
	return 0
}

// Delivering reports whether a round to owner is running.
func (p *Planner) Delivering(owner string) bool {
	st := p.owners[owner]
	return st != nil && st.delivering
}

// Wake returns when Plan should next be called to start a delivery that
// is only waiting out a backoff or a receiver's retry-after: the earliest
// such time among owners that are up with hints pending. ok is false when no
// owner is waiting on time alone.
func (p *Planner) Wake(now int64, owners map[string]Owner) (at int64, ok bool) {
	for name, o := range owners {
		st := p.owners[name]
		if st == nil || st.delivering || o.Pending == 0 || !o.Alive || st.notBefore <= now {
			continue
		}
		if !ok || st.notBefore < at {
			at, ok = st.notBefore, true
		}
	}
	return at, ok
}
