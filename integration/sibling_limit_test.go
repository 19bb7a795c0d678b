package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

// TestSiblingLimitThroughTheCLI is issue 12's acceptance check as a new
// user would meet it: against `cairn dev`, 100 puts without a context make
// 100 siblings; the 101st is refused with a one-line error that says what
// to do; `cairn get -o json` still returns the context; and a put with it
// leaves one sibling.
func TestSiblingLimitThroughTheCLI(t *testing.T) {
	// startDevCluster stops the nodes whatever happens to the test.
	d := startDevCluster(t, 3)
	c := d.cluster
	addr := d.addr("n1")
	// The first 100 through the SDK, on one connection: a hundred CLI
	// processes, each with its own TLS handshake, would test only process
	// start-up. What a user sees, the refusal, is the CLI's.
	sdk, err := client.New(t.Context(), c.seedsOnlyConfig(addr))
	require.NoError(t, err)
	defer sdk.Close()
	for i := range 100 {
		_, err := sdk.Put(t.Context(), "demo", []byte("storm"), fmt.Appendf(nil, "value %d", i))
		require.NoError(t, err)
	}
	g := c.get(addr, "demo", "storm")
	require.Len(t, g.Siblings, 100)

	_, errOut, err := c.cli("put", "--addr", addr, "demo", "storm", "one too many")
	require.Error(t, err, "the 101st sibling is refused")
	require.Contains(t, string(errOut), "too many siblings: 101; read and write back with the context to merge")
	require.Equal(t, 1, strings.Count(string(errOut), "\n"), "a one-line error: %s", errOut)

	// Nothing changed, on any replica (the puts waited for two of three:
	// the third may still be catching up, but never to 101); the context
	// is there to merge with.
	var counts []int
	for deadline := time.Now().Add(30 * time.Second); ; {
		counts = counts[:0]
		for _, cp := range c.replicas(addr, "demo", "storm") {
			counts = append(counts, len(cp.Siblings))
		}
		behind := slices.ContainsFunc(counts, func(n int) bool { return n < 100 })
		if !behind || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, []int{100, 100, 100}, counts)
	out := c.mustCLI("get", "--addr", d.addr("n2"), "-o", "json", "demo", "storm")
	var raw map[string]any
	require.NoError(t, json.Unmarshal(out, &raw))
	require.NotEmpty(t, raw["context"])
	ctx, ok := raw["context"].(string)
	require.True(t, ok)

	c.mustCLI("put", "--addr", addr, "--w", "all", "--context", ctx, "demo", "storm", "merged")
	g = c.get(addr, "demo", "storm", "--r", "all")
	require.Equal(t, []string{"merged"}, g.values())
	c.mustCLI("put", "--addr", addr, "demo", "storm", "a sibling again")
}
