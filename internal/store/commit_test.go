package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

// TestSyncedWriteWaitsForItsFsyncNotForTheLock holds WAL fsyncs back. A
// synced Modify must not return while its fsync is held; a second writer of
// the same key must meanwhile get through the key's lock, see the first
// write, and wait for its own fsync in turn.
func TestSyncedWriteWaitsForItsFsyncNotForTheLock(t *testing.T) {
	var held atomic.Bool
	syncing := make(chan struct{}, 16)
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	o := testOptions(t.TempDir())
	o.beforeWALSync = func() {
		if !held.Load() {
			return
		}
		select {
		case syncing <- struct{}{}:
		default:
		}
		<-release
	}
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() {
		free()
		require.NoError(t, s.Close())
	})
	held.Store(true)

	key := []byte("k")
	write := func(v string, seen chan<- int) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := s.Modify(1, "b", key, true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
				if seen != nil {
					seen <- len(cur.Siblings)
				}
				// No context: the write adds a sibling, replacing nothing.
				return mustUpdate(cur.Update(nil, "n1.test", []byte(v), false, 1)), true, nil
			})
			done <- err
		}()
		return done
	}
	deadline := time.After(10 * time.Second)
	first := write("a", nil)
	select {
	case <-syncing:
	case <-deadline:
		t.Fatal("the first write's fsync never started")
	}
	seen := make(chan int, 1)
	second := write("b", seen)
	select {
	case n := <-seen:
		require.Equal(t, 1, n, "the second writer must build on the first write")
	case <-deadline:
		t.Fatal("the second writer of the key waited for the first write's fsync")
	}
	select {
	case err := <-first:
		t.Fatalf("the first write returned (%v) before its fsync", err)
	case err := <-second:
		t.Fatalf("the second write returned (%v) before its fsync", err)
	default:
	}

	free()
	require.NoError(t, <-first)
	require.NoError(t, <-second)
	obj, found, err := s.Get(1, "b", key)
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, obj.Siblings, 2)
}

// TestModifyAsyncReturnsBeforeTheFsync: the write is visible when
// ModifyAsync returns, its Durable waits for the fsync, and Close waits
// for the Durable.
func TestModifyAsyncReturnsBeforeTheFsync(t *testing.T) {
	var held atomic.Bool
	syncing := make(chan struct{}, 16)
	release := make(chan struct{})
	o := testOptions(t.TempDir())
	o.beforeWALSync = func() {
		if !held.Load() {
			return
		}
		select {
		case syncing <- struct{}{}:
		default:
		}
		<-release
	}
	s, err := Open(o)
	require.NoError(t, err)
	held.Store(true)

	key := []byte("k")
	obj, durable, err := s.ModifyAsync(1, "b", key, true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(nil, "n1.test", []byte("v"), false, 1)), true, nil
	})
	require.NoError(t, err, "returned while the fsync is held")
	require.Len(t, obj.Siblings, 1)
	got, found, err := s.Get(1, "b", key)
	require.NoError(t, err)
	require.True(t, found && got.Equal(obj), "visible before it is durable")

	waited := make(chan error, 1)
	go func() { waited <- durable() }()
	closed := make(chan error, 1)
	select {
	case <-syncing:
	case <-time.After(10 * time.Second):
		t.Fatal("the write's fsync never started")
	}
	go func() { closed <- s.Close() }()
	select {
	case err := <-waited:
		t.Fatalf("Durable returned (%v) before the fsync", err)
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a write's durability was being waited for", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-waited)
	require.NoError(t, <-closed)
}
