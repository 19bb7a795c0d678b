package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/client"
	"github.com/stretchr/testify/require"
)

// fakeResult runs a short workload against the fake with some errors.
func fakeResult(t *testing.T) *Result {
	t.Helper()
	cfg := testConfig()
	cfg.Mix = Mix{Read: 1, Update: 1}
	cfg.Ops = 2000
	kv := newFakeKV(0)
	kv.fail = func(n int) error {
		if n%50 == 0 {
			return &client.QuorumError{Op: "put", Kind: "w", Need: 2, Got: 1, Of: 3}
		}
		return nil
	}
	res, err := Run(t.Context(), kv, cfg)
	require.NoError(t, err)
	return res
}

func TestResultJSONShape(t *testing.T) {
	res := fakeResult(t)
	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, res.WriteJSON(path))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))

	obj := func(v any, keys ...string) map[string]any {
		t.Helper()
		mm, ok := v.(map[string]any)
		require.True(t, ok, "%v is not an object", v)
		for _, k := range keys {
			require.Contains(t, mm, k)
		}
		return mm
	}
	obj(m, "config", "start", "end", "load", "run")
	cfg := obj(m["config"], "mix", "distribution", "records", "value_size", "concurrency", "ops", "load", "seed")
	require.Equal(t, "read=1,update=1", cfg["mix"])
	run := obj(m["run"], "start", "end", "duration_s", "requests", "ok", "errors", "ops_per_sec", "ops", "series")
	require.EqualValues(t, 2000, run["requests"])
	require.Contains(t, obj(run["cost"], "unavailable")["unavailable"], "no meter", "no figure without a meter, and the reason")
	ops := obj(run["ops"], "read", "update")
	for _, name := range []string{"read", "update"} {
		op := obj(ops[name], "requests", "ok", "not_found", "errors", "ops_per_sec", "latency_us")
		obj(op["latency_us"], "min", "mean", "p50", "p95", "p99", "p99_9", "max")
		obj(op["errors"], "timeout", "quorum", "unavailable", "overloaded", "invalid_argument", "other")
	}
	require.Positive(t, obj(obj(ops["update"])["errors"])["quorum"])
	require.Contains(t, obj(obj(ops["update"])["error_samples"]), "quorum")
	series, ok := run["series"].([]any)
	require.True(t, ok)
	for _, p := range series {
		pt := obj(p, "t_s", "ops_per_sec", "errors", "ops")
		obj(obj(pt["ops"], "read")["read"], "ops_per_sec", "errors", "p50_us", "p99_us")
	}
	// Written whole or not at all: no temporary file is left behind.
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestSummaryShowsErrors(t *testing.T) {
	res := fakeResult(t)
	var b bytes.Buffer
	require.NoError(t, res.WriteSummary(&b))
	s := b.String()
	for _, want := range []string{"workload a (read=1,update=1)", "load:", "run:", "p99.9", "errors:", "quorum", "need w=2, got 1 of 3"} {
		require.Contains(t, s, want)
	}
}
