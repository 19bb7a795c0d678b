package workers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func waitParked(t *testing.T, p *Pool[int], want int) {
	t.Helper()
	require.Eventually(t, func() bool {
		parked, _, _ := p.Counts()
		return parked == want
	}, 10*time.Second, time.Millisecond, "want %d parked workers", want)
}

// gatedPool is a pool whose items each wait for one token on gate.
func gatedPool(idleFor time.Duration) (*Pool[int], chan struct{}) {
	gate := make(chan struct{})
	return New(idleFor, func(int) { <-gate }), gate
}

func dispatchN(p *Pool[int], n int) {
	for i := range n {
		p.Go(i)
	}
}

func release(gate chan struct{}, n int) {
	for range n {
		gate <- struct{}{}
	}
}

func TestWorkersGrowWithBlockedRequests(t *testing.T) {
	p, gate := gatedPool(time.Hour)
	defer p.Close()
	dispatchN(p, 50)
	_, live, _ := p.Counts()
	require.Equal(t, 50, live, "a request never waits for a worker")
	release(gate, 50)
	waitParked(t, p, 50)
	dispatchN(p, 50)
	_, _, started := p.Counts()
	require.Equal(t, 50, started, "parked workers take the next requests")
	release(gate, 50)
	waitParked(t, p, 50)
}

func TestIdleWorkersExit(t *testing.T) {
	p, gate := gatedPool(time.Hour) // the test trims by hand
	defer p.Close()
	dispatchN(p, 5)
	release(gate, 5)
	waitParked(t, p, 5)

	// Only the worker parked when the period began has been parked for
	// all of it.
	p.trimIdle()
	parked, _, _ := p.Counts()
	require.Equal(t, 4, parked)

	// One worker serves a request; the three below it stay unused.
	dispatchN(p, 1)
	release(gate, 1)
	waitParked(t, p, 4)
	p.trimIdle()
	parked, _, _ = p.Counts()
	require.Equal(t, 1, parked, "the worker in use survives the trim")

	p.trimIdle()
	require.Eventually(t, func() bool {
		parked, live, _ := p.Counts()
		return parked == 0 && live == 0
	}, 10*time.Second, time.Millisecond, "the stopped workers exit")
	p.mu.Lock()
	armed := p.armed
	p.mu.Unlock()
	require.False(t, armed, "nothing left to trim: the timer is not re-armed")

	// The pool still serves after it emptied.
	dispatchN(p, 1)
	release(gate, 1)
	waitParked(t, p, 1)
}

func TestIdleWorkersExitOnTheirOwn(t *testing.T) {
	p, gate := gatedPool(5 * time.Millisecond)
	defer p.Close()
	dispatchN(p, 10)
	release(gate, 10)
	require.Eventually(t, func() bool {
		_, live, _ := p.Counts()
		return live == 0
	}, 10*time.Second, time.Millisecond)
}
