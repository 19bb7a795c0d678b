package node

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestGossipLogKeepsLevels(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	w := gossipLog{zap.New(core)}
	_, err := w.Write([]byte("2026/11/25 06:30:39 [DEBUG] memberlist: Stream connection from=x\n" +
		"2026/11/25 06:30:39 [WARN] memberlist: Refuting a suspect message\n" +
		"2026/11/25 06:30:39 [ERR] memberlist: Failed to send\nplain line\n"))
	require.NoError(t, err)
	entries := logs.AllUntimed()
	require.Len(t, entries, 3, "debug lines stay out of an info log")
	require.Equal(t, zapcore.WarnLevel, entries[0].Level)
	require.Equal(t, "memberlist: Refuting a suspect message", entries[0].Message)
	require.Equal(t, zapcore.ErrorLevel, entries[1].Level)
	require.Equal(t, "plain line", entries[2].Message)
}
