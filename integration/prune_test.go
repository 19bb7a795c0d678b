package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

// TestPruningRetiredActorsAfterUncleanRestarts: a node coordinating every
// write is killed with SIGKILL again and again, so each of its restarts
// retires its actor and the keys' version vectors gain one entry per
// restart. Anti-entropy's pruning then shrinks them back to the one actor
// still minting, while every acknowledged value stays and no replaced one
// comes back; a context read before the prune, naming only pruned actors,
// is still accepted (clamped), and its write stands beside the current
// value instead of replacing it or being refused.
func TestPruningRetiredActorsAfterUncleanRestarts(t *testing.T) {
	// Pruning is off until n1's last restart, so the vectors first show
	// what they grow to without it.
	cl := startCluster(t, 3, "--aae-prune-interval", "0", "--aae-prune-settle", "2s", "--aae-interval", "5s")
	n1 := cl.node("n1")
	const keys, restarts = 12, 3
	ctx := t.Context()
	dial := func(p *proc) *client.Client {
		c, err := client.New(ctx, cl.seedsOnlyConfig(p.addr))
		require.NoError(t, err)
		return c
	}
	key := func(i int) []byte { return fmt.Appendf(nil, "k%02d", i) }
	firstContexts := make([]client.Context, keys)
	grown := 0
	for round := 0; round <= restarts; round++ {
		c := dial(n1)
		for i := range keys {
			var opts []client.Option
			if round > 0 {
				obj, err := c.Get(ctx, "prune", key(i), client.R(client.All))
				require.NoError(t, err)
				opts = append(opts, client.Causal(obj.Context))
			}
			_, err := c.Put(ctx, "prune", key(i), fmt.Appendf(nil, "r%d-k%02d", round, i), append(opts, client.W(client.All))...)
			require.NoError(t, err, "round %d key %d", round, i)
			if round == 0 {
				obj, err := c.Get(ctx, "prune", key(i), client.R(client.All))
				require.NoError(t, err)
				firstContexts[i] = obj.Context
			}
		}
		_, copies, err := c.DebugReplicas(ctx, "prune", key(0))
		require.NoError(t, err)
		for _, cp := range copies {
			grown = max(grown, n1Actors(cp.Context))
		}
		require.NoError(t, c.Close())
		if round < restarts {
			if round == restarts-1 {
				require.Equal(t, restarts, grown, "n1's actors in a vector after %d unclean restarts", restarts-1)
				n1.args = append(n1.args, "--aae-prune-interval", "500ms")
			}
			cl.kill(n1)
			cl.start(n1)
			cl.waitReady(n1)
			cl.waitMembers(3)
		}
	}
	t.Logf("n1 actors in a vector before pruning: %d", grown)

	// Every vector shrinks to n1's current actor, on every replica.
	shrunk := func() string {
		c := dial(cl.node("n2"))
		defer func() { _ = c.Close() }()
		for i := range keys {
			_, copies, err := c.DebugReplicas(ctx, "prune", key(i))
			if err != nil || len(copies) != 3 {
				return fmt.Sprintf("key %d: %d copies, %v", i, len(copies), err)
			}
			for _, cp := range copies {
				if n := n1Actors(cp.Context); n != 1 {
					return fmt.Sprintf("key %d on %s names %d n1 actors: %v", i, cp.Node, n, cp.Context)
				}
			}
		}
		return ""
	}
	waited := time.Now()
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		why := shrunk()
		if why == "" {
			t.Logf("every vector back to one n1 actor %v after the last round", time.Since(waited).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vectors never shrank within 120s: %s", why)
		}
	}
	for _, name := range []string{"n2", "n3"} {
		pruned := cl.metric(cl.node(name).admin, "cairn_vv_pruned_entries_total")
		t.Logf("%s pruned %v vector entries", name, pruned)
		require.GreaterOrEqual(t, pruned, float64(keys*restarts), "%s", name)
	}

	// Every acknowledged value is there, alone: nothing replaced came back.
	c := dial(cl.node("n3"))
	defer func() { _ = c.Close() }()
	for i := range keys {
		obj, err := c.Get(ctx, "prune", key(i), client.R(client.All))
		require.NoError(t, err)
		require.Equal(t, []string{fmt.Sprintf("r%d-k%02d", restarts, i)}, siblingValues(obj), "key %d", i)
	}

	// A context from before the prune names only pruned actors: the write
	// is accepted by the node that retired them (k00) and by one that
	// learned of the prune (k01), and stands beside the current value.
	for i, coord := range []*proc{n1, cl.node("n2")} {
		cc := dial(coord)
		_, err := cc.Put(ctx, "prune", key(i), []byte("late"), client.Causal(firstContexts[i]), client.W(client.All))
		require.NoError(t, err, "a context naming pruned actors, coordinated by %s", coord.name)
		obj, err := cc.Get(ctx, "prune", key(i), client.R(client.All))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{fmt.Sprintf("r%d-k%02d", restarts, i), "late"}, siblingValues(obj), "key %d", i)
		require.NoError(t, cc.Close())
	}
}

// n1Actors counts the actors of node n1 a vector names.
func n1Actors(vv map[string]uint64) int {
	n := 0
	for a := range vv {
		if strings.HasPrefix(a, "n1.") {
			n++
		}
	}
	return n
}
