package integration

// The set workload of the lost-write checker (the one Jepsen ran against
// Riak), its history, and the comparison of that history with what a final
// read finds. checker_test.go runs it against clusters under faults.
//
// Clients add unique integers to sets stored under a few keys, each
// addition one read-merge-write (client.Update) whose resolver merges
// siblings. Every addition ends one of three ways:
//
//   - acknowledged: Update returned nil, so the element MUST be in the
//     final set (DESIGN.md, promise 1);
//   - indefinite: the put was sent and failed (quorum, timeout, a broken
//     connection): it may or may not have landed, so either is correct;
//   - not sent: the read failed, so no put was made: the element must be
//     absent.
//
// An element in the final set that no addition sent is a phantom: as
// wrong as a lost one.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

const (
	checkerBucket = "checker"
	// elementStride separates the clients' elements: client c (from 1)
	// adds c*elementStride + i for its i-th addition.
	elementStride = 1_000_000
)

// errCorruptSet marks a stored value that is not a set: never a fault's
// doing, always a bug.
var errCorruptSet = errors.New("corrupt set")

// encodeSet writes a set deterministically: its size, then its elements in
// increasing order as uvarint deltas (the first from zero). Equal sets
// encode to equal bytes, whatever order they were built in, so the
// resolver's merge does not depend on the order of the siblings.
func encodeSet(s map[uint64]struct{}) []byte {
	elems := make([]uint64, 0, len(s))
	for e := range s {
		elems = append(elems, e)
	}
	slices.Sort(elems)
	b := binary.AppendUvarint(make([]byte, 0, 2+2*len(elems)), uint64(len(elems)))
	var prev uint64
	for _, e := range elems {
		b = binary.AppendUvarint(b, e-prev)
		prev = e
	}
	return b
}

// decodeSet reads what encodeSet wrote, and refuses anything else: a value
// the checker cannot read must fail the run, not count as empty.
func decodeSet(b []byte) (map[uint64]struct{}, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: no size in %d bytes", errCorruptSet, len(b))
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: size %d, but %d bytes follow", errCorruptSet, n, len(b))
	}
	s := make(map[uint64]struct{}, n)
	var prev uint64
	for i := uint64(0); i < n; i++ {
		d, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: element %d of %d truncated", errCorruptSet, i, n)
		}
		b = b[k:]
		if i > 0 && d == 0 {
			return nil, fmt.Errorf("%w: element %d repeats %d", errCorruptSet, i, prev)
		}
		if prev+d < prev {
			return nil, fmt.Errorf("%w: element %d overflows", errCorruptSet, i)
		}
		prev += d
		s[prev] = struct{}{}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after %d elements", errCorruptSet, len(b), n)
	}
	return s, nil
}

// unionResolver merges siblings the way that loses nothing: the union of
// their sets.
func unionResolver(siblings []client.Sibling) ([]byte, error) {
	all := map[uint64]struct{}{}
	for i, sib := range siblings {
		s, err := decodeSet(sib.Value)
		if err != nil {
			return nil, fmt.Errorf("sibling %d: %w", i, err)
		}
		for e := range s {
			all[e] = struct{}{}
		}
	}
	return encodeSet(all), nil
}

// outcome is what became of one addition.
type outcome uint8

const (
	notSent outcome = iota + 1
	indefinite
	acknowledged
)

// addition is one attempt to add an element, timed from the run's start.
type addition struct {
	key        string
	client     int
	start, end time.Duration
	outcome    outcome
	err        error
}

// history records every addition of a run. Safe for concurrent use.
type history struct {
	began time.Time
	mu    sync.Mutex
	adds  map[uint64]addition
}

func newHistory() *history {
	return &history{began: time.Now(), adds: map[uint64]addition{}}
}

func (h *history) since() time.Duration { return time.Since(h.began) }

func (h *history) record(e uint64, a addition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.adds[e]; dup {
		panic(fmt.Sprintf("element %d added twice: the workload must never reuse one", e))
	}
	h.adds[e] = a
}

// add adds element e to the set under bucket/key with one Update and says
// what became of it. barrier, when set, runs between the read and the
// write.
func add(ctx context.Context, c *client.Client, bucket, key string, e uint64, resolver client.Resolver, timeout time.Duration, barrier func(context.Context)) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sent := false
	_, err := c.Update(ctx, bucket, []byte(key), func(cur *client.Object) ([]byte, error) {
		set := map[uint64]struct{}{}
		if cur.Found {
			var err error
			if set, err = decodeSet(cur.Value); err != nil {
				return nil, err
			}
		}
		set[e] = struct{}{}
		if barrier != nil {
			barrier(ctx)
		}
		// Update puts what this returns: from here on the write may land.
		sent = true
		return encodeSet(set), nil
	}, client.WithResolver(resolver))
	switch {
	case err == nil:
		return acknowledged, nil
	case sent:
		return indefinite, err
	}
	return notSent, err
}

// workload is the set workload's shape.
type workload struct {
	// bucket holds the sets: checkerBucket unless a run chose another.
	bucket   string
	keys     []string
	resolver client.Resolver
	// timeout bounds one addition, read and write together.
	timeout time.Duration
	// pause is how long a client waits between two additions: it keeps
	// the sets (rewritten whole by every addition) small enough that a
	// run of minutes stays cheap on a shared machine.
	pause time.Duration
}

func (w workload) bucketName() string {
	if w.bucket == "" {
		return checkerBucket
	}
	return w.bucket
}

// start runs one goroutine per client, client i adding elements
// (i+1)*elementStride + n to keys picked at random, until the returned
// stop is called; stop waits for them. The caller also registers stop
// with t.Cleanup, so a failing test cannot leak them.
func (w workload) start(h *history, clients []*client.Client, seed uint64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, c := range clients {
		id := i + 1
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			timer := time.NewTimer(0)
			defer timer.Stop()
			for n := uint64(0); ctx.Err() == nil; n++ {
				key := w.keys[rng.IntN(len(w.keys))]
				e := uint64(id)*elementStride + n
				start := h.since()
				out, err := add(ctx, c, w.bucketName(), key, e, w.resolver, w.timeout, nil)
				h.record(e, addition{key: key, client: id, start: start, end: h.since(), outcome: out, err: err})
				timer.Reset(w.pause)
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// lockstep runs rounds in which every client reads key before any of them
// writes it: a barrier between each Update's read and its put holds the
// writes until all the reads are done (or the addition's deadline
// passed). So every round's writes are concurrent by construction, with
// the same context, and become siblings: what the next round's resolver
// does with them decides whether anything is lost.
func lockstep(ctx context.Context, h *history, clients []*client.Client, bucket, key string, rounds int, resolver client.Resolver, timeout time.Duration) {
	for r := range rounds {
		var arrived atomic.Int32
		all := make(chan struct{})
		barrier := func(ctx context.Context) {
			if int(arrived.Add(1)) == len(clients) {
				close(all)
			}
			select {
			case <-all:
			case <-ctx.Done():
			}
		}
		var wg sync.WaitGroup
		for i, c := range clients {
			id := i + 1
			wg.Go(func() {
				e := uint64(id)*elementStride + uint64(r)
				start := h.since()
				out, err := add(ctx, c, bucket, key, e, resolver, timeout, barrier)
				h.record(e, addition{key: key, client: id, start: start, end: h.since(), outcome: out, err: err})
			})
		}
		wg.Wait()
	}
}

// finalState is a key as the final read found it.
type finalState struct {
	set      map[uint64]struct{}
	siblings int
}

// fault is one fault the nemesis caused, timed from the run's start.
type fault struct {
	Kind  string  `json:"kind"`
	Nodes string  `json:"nodes"`
	Start float64 `json:"start_s"`
	End   float64 `json:"end_s"`
	// HintsPending is the hints the reachable nodes held just before the
	// fault was undone: fallbacks took writes for the faulted nodes.
	HintsPending int `json:"hints_pending_before_undo"`
}

func (f fault) String() string {
	return fmt.Sprintf("%s %s [%.1fs, %.1fs]", f.Kind, f.Nodes, f.Start, f.End)
}

// lostElement is an acknowledged element the final read did not find,
// with what the checker knows about its write.
type lostElement struct {
	Element uint64  `json:"element"`
	Client  int     `json:"client"`
	Start   float64 `json:"start_s"`
	End     float64 `json:"end_s"`
	// Faults lists the faults active while it was written.
	Faults []string `json:"faults_during_write"`
}

// keyReport counts what became of the additions to one key (or, as the
// total, to all of them).
type keyReport struct {
	Key          string `json:"key"`
	Attempted    int    `json:"attempted"`
	Acknowledged int    `json:"acknowledged"`
	Indefinite   int    `json:"indefinite"`
	NotSent      int    `json:"not_sent"`
	// Lost: acknowledged and absent. Must be 0 unless the resolver drops
	// siblings.
	Lost int `json:"lost"`
	// UnacknowledgedPresent: indefinite and present (the write landed
	// although its caller heard an error).
	UnacknowledgedPresent int `json:"unacknowledged_present"`
	// Phantom: present, but never sent. Must be 0.
	Phantom         int           `json:"phantom"`
	FinalSize       int           `json:"final_size"`
	FinalSiblings   int           `json:"final_siblings"`
	LostElements    []lostElement `json:"lost_elements,omitempty"`
	PhantomElements []uint64      `json:"phantom_elements,omitempty"`
}

// maxListed bounds the elements a report lists per key.
const maxListed = 50

// analyze compares the history with the final sets.
func analyze(h *history, finals map[string]finalState, faults []fault) (keys []keyReport, total keyReport) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byKey := map[string]*keyReport{}
	for k, f := range finals {
		byKey[k] = &keyReport{Key: k, FinalSize: len(f.set), FinalSiblings: f.siblings}
	}
	elems := make([]uint64, 0, len(h.adds))
	for e := range h.adds {
		elems = append(elems, e)
	}
	slices.Sort(elems)
	for _, e := range elems {
		a := h.adds[e]
		r := byKey[a.key]
		if r == nil {
			r = &keyReport{Key: a.key}
			byKey[a.key] = r
		}
		_, present := finals[a.key].set[e]
		r.Attempted++
		switch a.outcome {
		case acknowledged:
			r.Acknowledged++
			if !present {
				r.Lost++
				if len(r.LostElements) < maxListed {
					r.LostElements = append(r.LostElements, lostElement{Element: e, Client: a.client,
						Start: a.start.Seconds(), End: a.end.Seconds(), Faults: activeFaults(faults, a)})
				}
			}
		case indefinite:
			r.Indefinite++
			if present {
				r.UnacknowledgedPresent++
			}
		case notSent:
			r.NotSent++
			if present {
				r.Phantom++
				r.PhantomElements = appendCapped(r.PhantomElements, e)
			}
		}
	}
	// Elements no addition to this key ever tried.
	for k, f := range finals {
		var odd []uint64
		for e := range f.set {
			if a, ok := h.adds[e]; !ok || a.key != k {
				odd = append(odd, e)
			}
		}
		slices.Sort(odd)
		for _, e := range odd {
			byKey[k].Phantom++
			byKey[k].PhantomElements = appendCapped(byKey[k].PhantomElements, e)
		}
	}
	total.Key = "total"
	for _, r := range byKey {
		keys = append(keys, *r)
		total.Attempted += r.Attempted
		total.Acknowledged += r.Acknowledged
		total.Indefinite += r.Indefinite
		total.NotSent += r.NotSent
		total.Lost += r.Lost
		total.UnacknowledgedPresent += r.UnacknowledgedPresent
		total.Phantom += r.Phantom
		total.FinalSize += r.FinalSize
		total.FinalSiblings += r.FinalSiblings
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Key < keys[j].Key })
	return keys, total
}

func appendCapped(list []uint64, e uint64) []uint64 {
	if len(list) < maxListed {
		list = append(list, e)
	}
	return list
}

// activeFaults lists the faults that overlapped addition a.
func activeFaults(faults []fault, a addition) []string {
	out := []string{}
	for _, f := range faults {
		if f.Start <= a.end.Seconds() && a.start.Seconds() <= f.End {
			out = append(out, f.String())
		}
	}
	return out
}

// ackedDuring counts, per fault kind, the acknowledged additions that
// overlapped a fault of that kind: the workload made progress through it.
func ackedDuring(h *history, faults []fault) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, f := range faults {
		out[f.Kind] += 0
	}
	for _, a := range h.adds {
		if a.outcome != acknowledged {
			continue
		}
		seen := map[string]bool{}
		for _, f := range faults {
			if !seen[f.Kind] && f.Start <= a.end.Seconds() && a.start.Seconds() <= f.End {
				seen[f.Kind] = true
				out[f.Kind]++
			}
		}
	}
	return out
}

// errorClasses counts the failed additions by the sentinel their error
// matches.
func errorClasses(h *history) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, a := range h.adds {
		if a.err == nil {
			continue
		}
		class := "other"
		for _, c := range []struct {
			name string
			err  error
		}{
			{"corrupt", errCorruptSet}, {"quorum", client.ErrQuorum}, {"timeout", client.ErrTimeout},
			{"unavailable", client.ErrUnavailable}, {"overloaded", client.ErrOverloaded},
			{"deadline", context.DeadlineExceeded}, {"canceled", context.Canceled},
		} {
			if errors.Is(a.err, c.err) {
				class = c.name
				break
			}
		}
		if class == "other" {
			msg := a.err.Error()
			if len(msg) > 80 {
				msg = msg[:80]
			}
			class = "other: " + msg
		}
		out[a.outcome.String()+" "+class]++
	}
	return out
}

func (o outcome) String() string {
	switch o {
	case notSent:
		return "not-sent"
	case indefinite:
		return "indefinite"
	case acknowledged:
		return "acknowledged"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// readFinal reads every key of bucket with R=all, retrying each until
// deadline, and unions the siblings itself: the final read must see what
// is stored, not what a resolver makes of it.
func readFinal(t *testing.T, c *client.Client, bucket string, keys []string, deadline time.Duration) map[string]finalState {
	t.Helper()
	out := map[string]finalState{}
	end := time.Now().Add(deadline)
	for _, k := range keys {
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			obj, err := c.Get(ctx, bucket, []byte(k), client.R(client.All), client.WithResolver(nil))
			cancel()
			if err == nil {
				set := map[uint64]struct{}{}
				for i, sib := range obj.Siblings {
					s, err := decodeSet(sib.Value)
					require.NoError(t, err, "key %s sibling %d", k, i)
					for e := range s {
						set[e] = struct{}{}
					}
				}
				out[k] = finalState{set: set, siblings: len(obj.Siblings)}
				break
			}
			if time.Now().After(end) {
				t.Fatalf("final read of %s with R=all failed %d times within %v; last: %v", k, attempt, deadline, err)
			}
			t.Logf("final read of %s (attempt %d): %v", k, attempt, err)
			time.Sleep(500 * time.Millisecond)
		}
	}
	return out
}

func TestSetCodec(t *testing.T) {
	for _, s := range []map[uint64]struct{}{
		{},
		{0: {}},
		{7: {}},
		{1_000_000: {}, 1_000_001: {}, 8_000_123: {}, 1<<64 - 1: {}},
	} {
		b := encodeSet(s)
		got, err := decodeSet(b)
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	// The encoding depends on the set only.
	a, b := map[uint64]struct{}{}, map[uint64]struct{}{}
	for i := uint64(0); i < 100; i++ {
		a[i*7919%1000] = struct{}{}
		b[(99-i)*7919%1000] = struct{}{}
	}
	require.Equal(t, encodeSet(a), encodeSet(b))

	valid := encodeSet(map[uint64]struct{}{5: {}, 9: {}})
	for name, bad := range map[string][]byte{
		"empty":          {},
		"size too large": {3, 5, 4},
		"truncated":      valid[:len(valid)-1],
		"trailing bytes": append(slices.Clone(valid), 0),
		"repeated":       {2, 5, 0},
		"overflow":       append(append([]byte{2}, binary.AppendUvarint(nil, 1<<64-1)...), 1),
		"bad varint":     {0xff},
	} {
		_, err := decodeSet(bad)
		require.ErrorIs(t, err, errCorruptSet, name)
	}
	_, err := unionResolver([]client.Sibling{{Value: valid}, {Value: []byte{9}}})
	require.ErrorIs(t, err, errCorruptSet)
	merged, err := unionResolver([]client.Sibling{{Value: valid}, {Value: encodeSet(map[uint64]struct{}{1: {}, 9: {}})}})
	require.NoError(t, err)
	require.Equal(t, encodeSet(map[uint64]struct{}{1: {}, 5: {}, 9: {}}), merged)
}

// TestCheckerAnalysis checks the comparison itself on a made-up history:
// the checker must be able to say lost, present-though-unacknowledged and
// phantom.
func TestCheckerAnalysis(t *testing.T) {
	h := newHistory()
	at := func(s int) time.Duration { return time.Duration(s) * time.Second }
	h.record(1, addition{key: "a", client: 1, start: at(1), end: at(2), outcome: acknowledged})
	h.record(2, addition{key: "a", client: 1, start: at(3), end: at(4), outcome: acknowledged})
	h.record(3, addition{key: "a", client: 2, start: at(5), end: at(6), outcome: indefinite, err: client.ErrTimeout})
	h.record(4, addition{key: "a", client: 2, start: at(7), end: at(8), outcome: indefinite, err: client.ErrQuorum})
	h.record(5, addition{key: "b", client: 3, start: at(1), end: at(9), outcome: notSent, err: client.ErrUnavailable})
	h.record(6, addition{key: "b", client: 3, start: at(1), end: at(2), outcome: acknowledged})
	finals := map[string]finalState{
		// 2 lost, 3 present without an ack, 6 sits under the wrong key.
		"a": {set: map[uint64]struct{}{1: {}, 3: {}, 6: {}}, siblings: 1},
		// 5 was never sent, 42 never attempted.
		"b": {set: map[uint64]struct{}{5: {}, 6: {}, 42: {}}, siblings: 2},
	}
	faults := []fault{{Kind: "kill", Nodes: "n2", Start: 3.5, End: 5}, {Kind: "pause", Nodes: "n1", Start: 8, End: 9}}
	keys, total := analyze(h, finals, faults)
	require.Len(t, keys, 2)
	require.Equal(t, keyReport{Key: "a", Attempted: 4, Acknowledged: 2, Indefinite: 2, Lost: 1, UnacknowledgedPresent: 1,
		Phantom: 1, FinalSize: 3, FinalSiblings: 1, PhantomElements: []uint64{6},
		LostElements: []lostElement{{Element: 2, Client: 1, Start: 3, End: 4, Faults: []string{"kill n2 [3.5s, 5.0s]"}}}}, keys[0])
	require.Equal(t, keyReport{Key: "b", Attempted: 2, Acknowledged: 1, NotSent: 1, Phantom: 2, FinalSize: 3, FinalSiblings: 2,
		PhantomElements: []uint64{5, 42}}, keys[1])
	require.Equal(t, keyReport{Key: "total", Attempted: 6, Acknowledged: 3, Indefinite: 2, NotSent: 1, Lost: 1,
		UnacknowledgedPresent: 1, Phantom: 3, FinalSize: 6, FinalSiblings: 3}, total)
	require.Equal(t, map[string]int{"kill": 1, "pause": 0}, ackedDuring(h, faults))
	require.Equal(t, map[string]int{"indefinite timeout": 1, "indefinite quorum": 1, "not-sent unavailable": 1}, errorClasses(h))
	require.True(t, strings.HasPrefix(fault{Kind: "partition", Nodes: "n1,n2|n3,n4,n5"}.String(), "partition n1,n2|n3,n4,n5"))
}
