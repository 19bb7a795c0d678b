package store

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

// The crash test runs the store in a child process (this test binary again)
// and kills it with SIGKILL mid-write.
const (
	crashDirEnv   = "CAIRN_STORE_CRASH_DIR"
	crashModeEnv  = "CAIRN_STORE_CRASH_MODE"
	crashWriters  = 4
	crashAcksWant = 400
	// crashPartitions are the partitions the child writes to; their actors
	// must be retired after the kill.
	crashPartitions = 3
	// crashHotKeys are the keys every writer of mode "shared" writes to.
	crashHotKeys = 6
)

// TestCrashKeepsEveryAcknowledgedWrite kills a child process that is doing
// synced writes from several goroutines, reopens its directory and checks
// that every write the child acknowledged (printed after Modify returned) is
// there, and that the actors it minted with are retired. The assertion holds
// wherever the kill lands.
//
// Mode "synced" acknowledges each synced Modify; mode "batch" acknowledges
// a few unsynced writes after one SyncWAL, as hinted handoff does; mode
// "shared" has every writer add siblings to the same few keys with synced
// Modify, so writers of one key commit one after another while earlier
// fsyncs are still running (commit.go).
func TestCrashKeepsEveryAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	for _, mode := range []string{"synced", "batch", "shared"} {
		t.Run(mode, func(t *testing.T) { testCrash(t, mode) })
	}
}

func testCrash(t *testing.T, mode string) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	acked := map[string]bool{}
	actors := map[uint32]string{}
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			// A line cut short by the kill was never acknowledged.
			break
		}
		require.NoError(t, err)
		fields := strings.Fields(line)
		switch {
		case len(fields) == 2 && fields[0] == "ack":
			acked[fields[1]] = true
		case len(fields) == 3 && fields[0] == "actor":
			p, err := strconv.ParseUint(fields[1], 10, 32)
			require.NoError(t, err)
			actors[uint32(p)] = fields[2]
		}
		if len(acked) == crashAcksWant && !killed {
			// Keep reading after the kill: lines already in the pipe were
			// acknowledged too.
			require.NoError(t, cmd.Process.Kill())
			killed = true
		}
	}
	require.True(t, killed, "the child stopped after %d acknowledgements", len(acked))
	require.Error(t, cmd.Wait(), "the child must die by the signal")
	require.Len(t, actors, crashPartitions)

	s := openAt(t, dir)
	require.True(t, s.Stats().UncleanStart)
	for write := range acked {
		p, key := crashKey(write, mode == "shared")
		obj, found, err := s.Get(p, "crash", []byte(key))
		require.NoError(t, err)
		require.True(t, found, "acknowledged write %s lost", write)
		if mode != "shared" {
			require.Len(t, obj.Siblings, 1)
		}
		require.True(t, holdsValue(obj, write), "acknowledged write %s lost from %s", write, key)
	}
	for p, old := range actors {
		fresh, err := s.Actor(p)
		require.NoError(t, err)
		require.NotEqual(t, old, fresh, "partition %d kept the actor of the killed incarnation", p)
	}
	t.Logf("%d acknowledged writes survived SIGKILL", len(acked))
}

// crashKey returns the partition and key of write "w<writer>-<i>": a key of
// its own, or one of the hot keys when shared.
func crashKey(write string, shared bool) (uint32, string) {
	var w, i int
	if _, err := fmt.Sscanf(write, "w%d-%d", &w, &i); err != nil {
		return 0, ""
	}
	if shared {
		h := i % crashHotKeys
		return uint32(h % crashPartitions), fmt.Sprintf("hot-%d", h)
	}
	return uint32(i % crashPartitions), write
}

func holdsValue(obj dvv.Object, v string) bool {
	for _, s := range obj.Siblings {
		if string(s.Value) == v {
			return true
		}
	}
	return false
}

// TestCrashHelperProcess is the child of TestCrashKeepsEveryAcknowledgedWrite;
// it does nothing in a normal run.
func TestCrashHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashKeepsEveryAcknowledgedWrite")
	}
	s, err := Open(testOptions(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var stdout sync.Mutex
	say := func(format string, args ...any) {
		// One write call per line, so a kill never leaves half a line that
		// looks whole.
		line := fmt.Sprintf(format+"\n", args...)
		stdout.Lock()
		defer stdout.Unlock()
		if _, err := os.Stdout.WriteString(line); err != nil {
			os.Exit(3)
		}
	}
	for p := range uint32(crashPartitions) {
		a, err := s.Actor(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "actor:", err)
			os.Exit(2)
		}
		say("actor %d %s", p, a)
	}
	mode := os.Getenv(crashModeEnv)
	batch, shared := mode == "batch", mode == "shared"
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			var unacked []string
			// Bounded so an orphaned child cannot run forever; the parent
			// kills it long before.
			for i := range 1_000_000 {
				write := fmt.Sprintf("w%d-%d", w, i)
				p, key := crashKey(write, shared)
				actor, err := s.Actor(p)
				// A shared key collects one sibling per write (no context
				// replaces nothing); a key of its own holds just its write.
				ctx := dvv.VV(nil)
				fn := func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
					if !shared {
						ctx = cur.VV
					}
					return mustUpdate(cur.Update(ctx, actor, []byte(write), false, int64(i))), true, nil
				}
				if err == nil && batch {
					_, err = s.ModifyUnsynced(p, "crash", []byte(key), fn)
				} else if err == nil {
					_, err = s.Modify(p, "crash", []byte(key), true, fn)
				}
				unacked = append(unacked, write)
				if err == nil && batch && len(unacked) < 5 {
					continue
				}
				if err == nil && batch {
					err = s.SyncWAL()
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "modify:", err)
					os.Exit(2)
				}
				for _, k := range unacked {
					say("ack %s", k)
				}
				unacked = unacked[:0]
			}
		})
	}
	wg.Wait()
	os.Exit(4)
}
