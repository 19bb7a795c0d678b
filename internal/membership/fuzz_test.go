package membership

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeState feeds the ring-state decoder arbitrary bytes, as a hostile
// peer could. It must never panic, must not let a small input make it
// allocate much (the input's declared lengths are not to be believed), and
// whatever it accepts must survive re-encoding unchanged.
func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState("cairn", 1024, []Member{
		{Name: "n1", Addr: "127.0.0.1:7101", Gossip: "127.0.0.1:7201", Status: StatusActive, Version: 1},
		{Name: "n2", Addr: "127.0.0.1:7102", Gossip: "127.0.0.1:7202", Status: StatusRemoved, Version: 3},
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		msg, err := decodeState(b)
		runtime.ReadMemStats(&after)
		if allocated := after.TotalAlloc - before.TotalAlloc; len(b) <= 64 && allocated > 1<<20 {
			t.Fatalf("%d input bytes allocated %d bytes", len(b), allocated)
		}
		if err != nil {
			require.ErrorIs(t, err, errMalformedState)
			return
		}
		again, err := decodeState(encodeState(msg.cluster, msg.partitions, msg.members))
		require.NoError(t, err)
		require.Equal(t, msg, again)
	})
}
