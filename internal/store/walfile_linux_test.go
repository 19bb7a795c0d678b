package store

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// TestWALFileWritesAndSyncsDirectly writes a WAL file through direct
// system calls, in pieces small and large, and reads back exactly what
// was written; files of other categories are pebble's own.
func TestWALFileWritesAndSyncsDirectly(t *testing.T) {
	dir := t.TempDir()
	var syncs atomic.Uint64
	fs := newWALFS(vfs.Default, &syncs, nil)
	fs.pace.slow = time.Hour // every call direct, whatever the disk takes

	other, err := fs.Create(filepath.Join(dir, "MANIFEST"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, wrapped := other.(*walFile)
	require.False(t, wrapped, "only WAL files are wrapped")
	require.NoError(t, other.Close())

	name := filepath.Join(dir, "000001.log")
	f, err := fs.Create(name, walCategory)
	require.NoError(t, err)
	wf, ok := f.(*walFile)
	require.True(t, ok)
	require.NotNil(t, wf.direct, "an operating system file takes direct calls")

	var want bytes.Buffer
	for i, size := range []int{1, 512, 32 << 10, 4 << 20, 7} {
		p := bytes.Repeat([]byte{byte('a' + i)}, size)
		n, err := f.Write(p)
		require.NoError(t, err)
		require.Equal(t, size, n)
		want.Write(p)
		require.NoError(t, f.SyncData())
	}
	require.EqualValues(t, 5, syncs.Load())
	require.True(t, fs.pace.quick())
	require.NoError(t, f.Close())

	got, err := os.ReadFile(name)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want.Bytes(), got), "the file holds what was written, in order")

	// A closed file's descriptor may already be another file's: the calls
	// go through its RawConn, which refuses them.
	_, err = f.Write([]byte("late"))
	require.Error(t, err)
	require.Error(t, f.SyncData())
	got, err = os.ReadFile(name)
	require.NoError(t, err)
	require.Equal(t, want.Len(), len(got))
}

// TestSlowWALSyncsSendTheNextOnesThroughTheRuntime: once direct syncs
// have been slow, writes and syncs take the ordinary calls, and still
// land.
func TestSlowWALSyncsSendTheNextOnesThroughTheRuntime(t *testing.T) {
	dir := t.TempDir()
	var syncs atomic.Uint64
	fs := newWALFS(vfs.Default, &syncs, nil)
	fs.pace.slow = 0 // every sync is slow
	fs.pace.bucket.Store(ordinaryFrom - slowSyncWeight)
	name := filepath.Join(dir, "000002.log")
	f, err := fs.Create(name, walCategory)
	require.NoError(t, err)

	_, err = f.Write([]byte("first"))
	require.NoError(t, err)
	require.True(t, fs.pace.quick())
	require.NoError(t, f.SyncData())
	require.False(t, fs.pace.quick(), "one more slow sync fills the bucket")

	_, err = f.Write([]byte(" second"))
	require.NoError(t, err)
	require.NoError(t, f.SyncData())
	require.NoError(t, f.Close())
	got, err := os.ReadFile(name)
	require.NoError(t, err)
	require.Equal(t, "first second", string(got))
	require.EqualValues(t, 2, syncs.Load())
}
