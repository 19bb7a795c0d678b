package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/quorum"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// These tests run the real loop (goroutines, timers, contexts) against
// replicas that answer, fail or hang as each test says. They check
// outcomes, never durations: the scripts in testdata/ cover the decisions
// step by step.

// liveReplicas answers from a map of copies; nodes in hang block until
// their call's context ends; nodes in refuse fail as undelivered.
type liveReplicas struct {
	hanging atomic.Int64 // calls blocked in hang now
	mu      sync.Mutex
	copies  map[string]dvv.Object
	hang    map[string]bool
	refuse  map[string]bool
	writes  map[string]int // completed writes by copy name
	fsync   chan struct{}  // when set, the coordinator's own writes are durable once it is closed
}

func newLiveReplicas() *liveReplicas {
	return &liveReplicas{copies: map[string]dvv.Object{}, hang: map[string]bool{},
		refuse: map[string]bool{}, writes: map[string]int{}}
}

func (r *liveReplicas) behave(ctx context.Context, node string) error {
	r.mu.Lock()
	hang, refuse := r.hang[node], r.refuse[node]
	r.mu.Unlock()
	switch {
	case refuse:
		return fmt.Errorf("%w: connection refused", ErrNotDelivered)
	case hang:
		r.hanging.Add(1)
		defer r.hanging.Add(-1)
		<-ctx.Done()
		return fmt.Errorf("%w: %v", cairn.ErrTimeout, ctx.Err())
	}
	return nil
}

func (r *liveReplicas) Read(ctx context.Context, t quorum.Target, _ Key) (Copy, error) {
	if err := r.behave(ctx, t.Node); err != nil {
		return Copy{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	obj, ok := r.copies[copyName(t.Node, t.For)]
	return Copy{Object: obj, Found: ok}, nil
}

func (r *liveReplicas) Write(ctx context.Context, t quorum.Target, _ Key, obj dvv.Object, sync bool) (bool, error) {
	if err := r.behave(ctx, t.Node); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	name := copyName(t.Node, t.For)
	r.copies[name] = dvv.Sync(r.copies[name], obj)
	r.writes[name]++
	return sync, nil
}

func (r *liveReplicas) Mint(_ context.Context, self quorum.Target, w Write, sync bool) (dvv.Object, func() (bool, error), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	obj := mustUpdate(r.copies[self.Node].Update(w.Context, self.Node, w.Value, w.Tombstone, 0))
	r.copies[self.Node] = obj
	if r.fsync == nil {
		return obj, nil, nil
	}
	fsync := r.fsync
	return obj, func() (bool, error) { <-fsync; return sync, nil }, nil
}

func (r *liveReplicas) Forward(context.Context, string, Write) ([]byte, error) {
	return nil, errors.New("not used")
}

func (r *liveReplicas) written(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes[name]
}

type allUp struct{}

func (allUp) Up(string) bool       { return true }
func (allUp) Failed(string, error) {}
func route() Route {
	return Route{Primaries: []string{"n1", "n2", "n3"}, Fallbacks: []string{"n4", "n5"}, Sloppy: true}
}
func spec(r, w int) quorum.Spec { return quorum.Spec{N: 3, R: r, W: w, NotFoundOK: true} }
func testKey() Key              { return Key{Bucket: "b", Key: []byte("k")} }
func testWrite(v string) Write  { return Write{Key: testKey(), Value: []byte(v)} }
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, msg)
}

func newCoordinator(t *testing.T, r Replicas) *Coordinator {
	t.Helper()
	c, err := New(DefaultConfig("n1"), r, allUp{}, nil)
	require.NoError(t, err)
	return c
}

func TestWriteReachesEveryReplicaAfterTheAnswer(t *testing.T) {
	r := newLiveReplicas()
	r.hang["n3"] = true // n3 answers only when its call's deadline ends
	c := newCoordinator(t, r)
	defer c.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := c.Put(ctx, testWrite("v"), spec(2, 2), route(), false)
	require.NoError(t, err, "n1 and n2 make w=2")

	// n3 stays silent past a quarter of the request's time: the write
	// goes on, in the background, to the next fallback as a hint for n3.
	eventually(t, func() bool { return r.written(copyName("n4", "n3")) == 1 }, "n4 never got the write for n3")
}

// TestReplicasGetTheWriteWhileTheLocalCopyIsSynced: the coordinator sends
// the object to the other replicas as soon as its own copy is written,
// without waiting for its fsync, and its own acknowledgement counts once
// the fsync is done.
func TestReplicasGetTheWriteWhileTheLocalCopyIsSynced(t *testing.T) {
	r := newLiveReplicas()
	r.fsync = make(chan struct{})
	c := newCoordinator(t, r)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Put(ctx, testWrite("v"), spec(2, 3), route(), false)
		done <- err
	}()
	eventually(t, func() bool { return r.written("n2") == 1 && r.written("n3") == 1 },
		"the replicas never got the write while the local fsync was running")
	select {
	case err := <-done:
		t.Fatalf("w=3 answered (%v) before the coordinator's own copy was durable", err)
	default:
	}
	close(r.fsync)
	require.NoError(t, <-done)
}

func TestClientGoingAwayDoesNotStopTheReplicaWrites(t *testing.T) {
	r := newLiveReplicas()
	c := newCoordinator(t, r)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	_, err := c.Put(ctx, testWrite("v"), spec(2, 1), route(), false)
	require.NoError(t, err)
	cancel() // the client hangs up at once
	eventually(t, func() bool { return r.written("n2") == 1 && r.written("n3") == 1 }, "a replica missed the write")
}

// TestLostConnectionEndsTheReplicaCalls: a request cancelled before it is
// decided (its client's connection is gone) stops its replica calls at
// once, not at its deadline, an hour away here.
func TestLostConnectionEndsTheReplicaCalls(t *testing.T) {
	for _, op := range []string{"get", "put"} {
		t.Run(op, func(t *testing.T) {
			r := newLiveReplicas()
			for _, n := range []string{"n2", "n3", "n4", "n5"} {
				r.hang[n] = true
			}
			c := newCoordinator(t, r)
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()
			ctx, lose := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				var err error
				if op == "get" {
					_, err = c.Get(ctx, testKey(), spec(2, 2), route())
				} else {
					_, err = c.Put(ctx, testWrite("v"), spec(2, 2), route(), false)
				}
				done <- err
			}()
			eventually(t, func() bool { return r.hanging.Load() >= 1 }, "the replica calls never started")
			lose()
			require.Error(t, <-done)
			eventually(t, func() bool { return r.hanging.Load() == 0 }, "replica calls outlived their request's connection")
		})
	}
}

func TestDeadlineDecidesWhenReplicasHang(t *testing.T) {
	r := newLiveReplicas()
	for _, n := range []string{"n2", "n3", "n4", "n5"} {
		r.hang[n] = true
	}
	c := newCoordinator(t, r)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Put(ctx, testWrite("v"), spec(2, 2), route(), false)
	require.ErrorIs(t, err, cairn.ErrQuorum)
	require.ErrorIs(t, err, cairn.ErrTimeout)
	var qe *cairn.QuorumError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, 1, qe.Got, "only the coordinator's own copy")
	// Both silent primaries were given a fallback before the deadline.
	require.Equal(t, 5, qe.Of, "%v", qe)
}

// TestRefusedReplicaFailsOverAtOnce, with calls that block and with
// calls answered by callback on the very goroutine that makes them (a
// refusal, then its fallback's answer, before the write is decided).
func TestRefusedReplicaFailsOverAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas func() (Replicas, *liveReplicas)
	}{
		{"blocking", func() (Replicas, *liveReplicas) { r := newLiveReplicas(); return r, r }},
		{"callback", func() (Replicas, *liveReplicas) { r := newAsyncReplicas(); return r, r.liveReplicas }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, live := tc.replicas()
			live.refuse["n2"] = true
			c := newCoordinator(t, r)
			defer c.Close()
			// A long deadline: the failover must not wait for silence.
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()
			_, err := c.Put(ctx, testWrite("v"), spec(2, 3), route(), false)
			require.NoError(t, err, "n1, n3 and n4 for n2 make w=3")
			require.Equal(t, 1, live.written(copyName("n4", "n2")))
		})
	}
}

func TestReadRepairRunsAfterTheAnswer(t *testing.T) {
	r := newLiveReplicas()
	old := mustUpdate(dvv.Object{}.Update(nil, "a", []byte("old"), false, 0))
	cur := mustUpdate(old.Update(old.VV, "a", []byte("new"), false, 0))
	r.copies["n1"], r.copies["n2"], r.copies["n3"] = cur, cur, old
	c := newCoordinator(t, r)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res, err := c.Get(ctx, testKey(), spec(3, 2), route())
	require.NoError(t, err)
	require.Equal(t, "new", string(res.Object.Live()[0].Value))
	eventually(t, func() bool { return r.written("n3") == 1 }, "n3 was never repaired")
	require.Zero(t, r.written("n1"), "an up-to-date copy is not rewritten")
}

func TestCloseCutsOffCallsStillRunning(t *testing.T) {
	r := newLiveReplicas()
	r.hang["n3"], r.hang["n4"], r.hang["n5"] = true, true, true
	c := newCoordinator(t, r)
	putDecided(t, c)
	// The write to n3 waits out an hour-long deadline; Close must not.
	// goleak (TestMain) checks that nothing is left running.
	c.Close()
}

// putDecided makes a put at w=2 that must succeed without n3 (which
// may hang), with a deadline an hour away that nothing in the test waits
// for.
func putDecided(t *testing.T, c *Coordinator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	t.Cleanup(cancel)
	_, err := c.Put(ctx, testWrite("v"), spec(2, 2), route(), false)
	require.NoError(t, err, "n1 and n2 make w=2")
}

// mustUpdate takes dvv's Update in a history whose counters cannot come
// near the end of their range, so an error is a bug in the test.
func mustUpdate(o dvv.Object, err error) dvv.Object {
	if err != nil {
		panic(err)
	}
	return o
}

// asyncReplicas writes to other nodes by callback, as the node's replica
// set does. A write to a node in hold waits for the test to answer it;
// any other is made at once and answered on the goroutine that started
// it.
type asyncReplicas struct {
	*liveReplicas
	amu  sync.Mutex
	hold map[string]bool
	held map[string]func(bool, error)
}

func newAsyncReplicas(hold ...string) *asyncReplicas {
	r := &asyncReplicas{liveReplicas: newLiveReplicas(), hold: map[string]bool{}, held: map[string]func(bool, error){}}
	for _, n := range hold {
		r.hold[n] = true
	}
	return r
}

func (r *asyncReplicas) WriteAsync(ctx context.Context, t quorum.Target, k Key, obj dvv.Object, sync bool, done func(bool, error)) bool {
	r.amu.Lock()
	if r.hold[t.Node] {
		r.held[t.Node] = done
		r.amu.Unlock()
		return true
	}
	r.amu.Unlock()
	done(r.Write(ctx, t, k, obj, sync))
	return true
}

// answer answers the held write to node, on the caller's goroutine.
func (r *asyncReplicas) answer(t *testing.T, node string, err error) {
	t.Helper()
	r.amu.Lock()
	done := r.held[node]
	delete(r.held, node)
	r.amu.Unlock()
	require.NotNil(t, done, "no write to %s is held", node)
	done(false, err)
}

// TestDecidedWriteIsFinishedByItsLastAnswer: once a write is decided, no
// goroutine of the coordinator waits for the rest of its answers. The one
// that comes last is handled on the goroutine that brings it, failover
// included, and the failover's own answer may come back on that same
// goroutine before the call returns.
func TestDecidedWriteIsFinishedByItsLastAnswer(t *testing.T) {
	r := newAsyncReplicas("n3")
	c := newCoordinator(t, r)
	defer c.Close()
	putDecided(t, c)
	r.answer(t, "n3", errors.New("disk full"))
	require.Equal(t, 1, r.written(copyName("n4", "n3")), "n3's failure did not bring its fallback in at once")
	_, _, started := c.background.Counts()
	require.Zero(t, started, "a goroutine was started to wait for a decided write")
	_, _, started = c.calls.Counts()
	require.Zero(t, started, "a worker was woken for a write the replica set makes by callback")
}

// TestAnswersAfterCloseStartNoCalls: an answer that comes after Close,
// from a call the coordinator no longer owns, ends its request without a
// failover (the pools are closed).
func TestAnswersAfterCloseStartNoCalls(t *testing.T) {
	r := newAsyncReplicas("n3")
	c := newCoordinator(t, r)
	putDecided(t, c)
	c.Close()
	r.answer(t, "n3", errors.New("connection lost"))
	require.Zero(t, r.written(copyName("n4", "n3")), "a fallback was called after Close")
}
