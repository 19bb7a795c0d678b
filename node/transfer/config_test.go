package transfer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	bad := Config{MaxConcurrent: 0, BatchKeys: maxBatchKeys + 1, BatchBytes: 10, Settle: -1}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"interval", "max_concurrent", "bytes_per_second", "batch_keys", "batch_bytes", "call_timeout", "retry_after", "settle"} {
		require.Contains(t, err.Error(), want)
	}
}

func TestNewRefusesMissingDeps(t *testing.T) {
	_, err := New(DefaultConfig(), Deps{})
	require.ErrorContains(t, err, "a node name is required")
	require.ErrorContains(t, err, "store, peers, members and key check are required")
}
