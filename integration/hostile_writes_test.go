package integration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// goodClient is a well-behaved application that keeps writing and reading
// its own keys while hostile traffic hits the cluster: every request it
// makes must succeed, and its latencies are kept for the log.
type goodClient struct {
	mu        sync.Mutex
	latencies []time.Duration
	errs      []error
	stop      chan struct{}
	done      chan struct{}
}

func startGoodClient(t *testing.T, cfg client.Config) *goodClient {
	t.Helper()
	c, err := client.New(t.Context(), cfg)
	require.NoError(t, err)
	g := &goodClient{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		defer func() { _ = c.Close() }()
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			key := fmt.Appendf(nil, "good-%d", i%50)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			obj, err := c.Get(ctx, "good", key)
			if err == nil {
				_, err = c.Put(ctx, "good", key, fmt.Appendf(nil, "v%d", i), client.Causal(obj.Context))
			}
			took := time.Since(start)
			cancel()
			g.mu.Lock()
			g.latencies = append(g.latencies, took)
			if err != nil {
				g.errs = append(g.errs, err)
			}
			g.mu.Unlock()
		}
	}()
	return g
}

// finish stops the client and checks that nothing it did failed; it
// returns its requests' p99 (a get and a put each) for the log.
func (g *goodClient) finish(t *testing.T) time.Duration {
	t.Helper()
	close(g.stop)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Empty(t, g.errs, "the well-behaved client's requests failed")
	require.NotEmpty(t, g.latencies)
	slices.Sort(g.latencies)
	return g.latencies[len(g.latencies)*99/100]
}

// forge returns ctx with the counter of every actor it names set to
// counter, and an actor no node has added.
func forge(t *testing.T, ctx client.Context, counter uint64) client.Context {
	t.Helper()
	require.NotEmpty(t, ctx)
	require.Equal(t, byte(1), ctx[0], "context version")
	var vv map[string]uint64
	require.NoError(t, msgpack.Unmarshal(ctx[1:], &vv))
	for a := range vv {
		vv[a] = counter
	}
	vv["n9.forged"] = counter
	b, err := msgpack.Marshal(vv)
	require.NoError(t, err)
	return append([]byte{1}, b...)
}

// TestHostileClients runs hostile but well-formed traffic against a real
// 3-node cluster while a well-behaved client keeps working beside it:
// forged contexts, which must be refused and never make an acknowledged
// write vanish, and a sibling storm, which the sibling limit must stop.
func TestHostileClients(t *testing.T) {
	cl := startCluster(t, 3)
	var addrs []string
	for _, p := range cl.nodes {
		addrs = append(addrs, p.addr)
	}
	c, err := client.New(t.Context(), cl.clientConfig(addrs...))
	require.NoError(t, err)
	defer func() { _ = c.Close() }()

	t.Run("forged contexts", func(t *testing.T) {
		good := startGoodClient(t, cl.clientConfig(addrs...))
		ctx := t.Context()
		key := []byte("forged")
		_, err := c.Put(ctx, "hostile", key, []byte("a"), client.W(client.All))
		require.NoError(t, err)
		_, err = c.Put(ctx, "hostile", key, []byte("b"), client.W(client.All))
		require.NoError(t, err)
		obj, err := c.Get(ctx, "hostile", key, client.R(client.All))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"a", "b"}, siblingValues(obj))

		// A refusal needs every primary's answer to the coordinator's
		// catch-up, which waits a quarter of the request's time: a long
		// deadline keeps a loaded machine from making a primary look
		// silent (the context would be clamped instead).
		patient := client.Timeout(30 * time.Second)
		for _, counter := range []uint64{1 << 40, 1<<63 - 1, math.MaxUint64} {
			_, err := c.Put(ctx, "hostile", key, []byte("evil"), client.Causal(forge(t, obj.Context, counter)), client.W(client.All), patient)
			require.ErrorIs(t, err, client.ErrInvalidArgument, "counter %d", counter)
			_, err = c.Delete(ctx, "hostile", key, client.Causal(forge(t, obj.Context, counter)), patient)
			require.ErrorIs(t, err, client.ErrInvalidArgument, "counter %d", counter)
		}
		// Three writes without a context afterwards: each is a sibling
		// beside the two acknowledged before, on every replica.
		for _, v := range []string{"c", "d", "e"} {
			_, err := c.Put(ctx, "hostile", key, []byte(v), client.W(client.All))
			require.NoError(t, err)
		}
		obj, err = c.Get(ctx, "hostile", key, client.R(client.All))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"a", "b", "c", "d", "e"}, siblingValues(obj))
		_, copies, err := c.DebugReplicas(ctx, "hostile", key)
		require.NoError(t, err)
		require.Len(t, copies, 3)
		for _, cp := range copies {
			require.Len(t, cp.Siblings, 5, "%s", cp.Node)
		}
		t.Logf("forged contexts: the good client's p99 %v", good.finish(t))
	})

	t.Run("sibling storm", func(t *testing.T) {
		good := startGoodClient(t, cl.clientConfig(addrs...))
		key := []byte("storm")
		var wg sync.WaitGroup
		var mu sync.Mutex
		refused, other := 0, []error{}
		for w := range 16 {
			wg.Go(func() {
				for i := range 20 {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					_, err := c.Put(ctx, "hostile", key, fmt.Appendf(nil, "storm %d.%d", w, i))
					cancel()
					mu.Lock()
					switch {
					case err == nil:
					case errorIsSiblingLimit(err):
						refused++
					default:
						other = append(other, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Empty(t, other)
		require.Positive(t, refused, "320 puts without a context must meet the limit of 100")
		ctx := t.Context()
		obj, err := c.Get(ctx, "hostile", key, client.R(client.All))
		require.NoError(t, err)
		require.LessOrEqual(t, len(obj.Siblings), 100)
		_, copies, err := c.DebugReplicas(ctx, "hostile", key)
		require.NoError(t, err)
		for _, cp := range copies {
			require.LessOrEqual(t, len(cp.Siblings), 100, "%s", cp.Node)
		}
		// The application collapses the storm with the context it read.
		_, err = c.Put(ctx, "hostile", key, []byte("calm"), client.Causal(obj.Context), client.W(client.All))
		require.NoError(t, err)
		obj, err = c.Get(ctx, "hostile", key, client.R(client.All))
		require.NoError(t, err)
		require.Equal(t, []string{"calm"}, siblingValues(obj))
		t.Logf("sibling storm: %d puts refused; the good client's p99 %v", refused, good.finish(t))
	})
}

func siblingValues(obj *client.Object) []string {
	var out []string
	for _, s := range obj.Siblings {
		out = append(out, string(s.Value))
	}
	return out
}

func errorIsSiblingLimit(err error) bool {
	return errors.Is(err, client.ErrInvalidArgument) && strings.Contains(err.Error(), "too many siblings")
}
