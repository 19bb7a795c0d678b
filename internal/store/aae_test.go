package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

type hookCall struct {
	p           uint32
	bucket, key string
	old, new    string // the single live value, "" for none
	hadOld      bool
}

func liveValue(o dvv.Object) string {
	if l := o.Live(); len(l) == 1 {
		return string(l[0].Value)
	}
	return ""
}

// recordHook returns options whose OnObjectWrite appends to calls.
func recordHook(dir string, calls *[]hookCall, mu *sync.Mutex) Options {
	o := testOptions(dir)
	o.OnObjectWrite = func(p uint32, bucket string, key []byte, old dvv.Object, hadOld bool, new dvv.Object) {
		mu.Lock()
		defer mu.Unlock()
		*calls = append(*calls, hookCall{p, bucket, string(key), liveValue(old), liveValue(new), hadOld})
	}
	return o
}

func TestOnObjectWriteSeesEveryObjectWriteAndNothingElse(t *testing.T) {
	var calls []hookCall
	var mu sync.Mutex
	s, err := Open(recordHook(t.TempDir(), &calls, &mu))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()

	put(t, s, 3, "b", []byte("k"), "v1")
	put(t, s, 3, "b", []byte("k"), "v2")
	_, err = s.ModifyUnsynced(4, "b", []byte("u"), func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(cur.VV, "n1.test", []byte("x"), false, 1)), true, nil
	})
	require.NoError(t, err)
	// Not written: no call.
	_, err = s.Modify(3, "b", []byte("k"), true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) { return cur, false, nil })
	require.NoError(t, err)
	_, err = s.Modify(3, "b", []byte("k"), true, func(dvv.Object, bool) (dvv.Object, bool, error) {
		return dvv.Object{}, true, errors.New("refused")
	})
	require.Error(t, err)
	// Hints are not objects.
	_, err = s.ModifyHint(HintRef{Owner: "n2", Partition: 3, Bucket: "b", Key: []byte("h")}, true, 1, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(cur.VV, "n1.test", []byte("h"), false, 1)), true, nil
	})
	require.NoError(t, err)

	require.Equal(t, []hookCall{
		{3, "b", "k", "", "v1", false},
		{3, "b", "k", "v1", "v2", true},
		{4, "b", "u", "", "x", false},
	}, calls)
}

func TestOnPartitionDropFollowsTheDrop(t *testing.T) {
	o := testOptions(t.TempDir())
	var s *Store
	var dropped []uint32
	o.OnPartitionDrop = func(p uint32) {
		// The objects are gone by the time the hook runs.
		require.Empty(t, scanAll(t, s, p))
		dropped = append(dropped, p)
	}
	s, err := Open(o)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	put(t, s, 7, "b", []byte("k"), "v")
	require.NoError(t, s.DropPartition(7))
	require.Equal(t, []uint32{7}, dropped)
}

func aaeRecords(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, s.AAERecords(func(r AAERecord) error {
		out[string(r.Key)] = string(r.Value)
		return nil
	}))
	return out
}

func TestSaveOnCloseStoresRecordsInTheCleanShutdown(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	var writesAtSave atomic.Int64
	var writes atomic.Int64
	o.OnObjectWrite = func(uint32, string, []byte, dvv.Object, bool, dvv.Object) { writes.Add(1) }
	o.SaveOnClose = func() ([]AAERecord, error) {
		writesAtSave.Store(writes.Load())
		return []AAERecord{{Key: []byte("t1"), Value: []byte("one")}, {Key: []byte("t2"), Value: []byte("two")}}, nil
	}
	s, err := Open(o)
	require.NoError(t, err)
	// Writers racing with Close: whatever they manage to write, SaveOnClose
	// runs after the last of them.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Modify(1, "b", fmt.Appendf(nil, "w%d-%d", w, i), false, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
					return mustUpdate(cur.Update(cur.VV, "n1.test", []byte("v"), false, 1)), true, nil
				})
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return writes.Load() >= 20 }, 10*time.Second, time.Millisecond)
	require.NoError(t, s.Close())
	wg.Wait()
	require.Equal(t, writes.Load(), writesAtSave.Load(), "no write after the save")

	o.SaveOnClose = nil
	o.OnObjectWrite = nil
	s = openWith(t, o)
	require.False(t, s.Stats().UncleanStart)
	require.Equal(t, map[string]string{"t1": "one", "t2": "two"}, aaeRecords(t, s))
	require.NoError(t, s.DeleteAAERecords())
	require.Empty(t, aaeRecords(t, s))
}

func openWith(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestSaveOnCloseErrorSavesNothingButClosesCleanly(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.SaveOnClose = func() ([]AAERecord, error) { return nil, errors.New("cannot marshal") }
	s, err := Open(o)
	require.NoError(t, err)
	require.ErrorContains(t, s.Close(), "cannot marshal")

	o.SaveOnClose = func() ([]AAERecord, error) {
		return []AAERecord{{Key: []byte("ok"), Value: []byte("1")}, {Key: nil}}, nil
	}
	s, err = Open(o)
	require.NoError(t, err)
	require.False(t, s.Stats().UncleanStart)
	require.ErrorIs(t, s.Close(), cairn.ErrInvalidArgument)

	o.SaveOnClose = nil
	s = openWith(t, o)
	require.False(t, s.Stats().UncleanStart)
	require.Empty(t, aaeRecords(t, s), "a batch with a bad record saves none of it")
}

func TestPutAAERecordsRefusesBadKeysWhole(t *testing.T) {
	s := openTest(t)
	err := s.PutAAERecords([]AAERecord{{Key: []byte("a"), Value: []byte("1")}, {Key: make([]byte, MaxAAEKeyBytes+1)}})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.Empty(t, aaeRecords(t, s))
	require.NoError(t, s.PutAAERecords([]AAERecord{{Key: []byte("a"), Value: []byte("1")}}))
	require.Equal(t, map[string]string{"a": "1"}, aaeRecords(t, s))
}

func TestObjectPartitionsListsPartitionsWithObjects(t *testing.T) {
	s := openTest(t)
	got, err := s.ObjectPartitions()
	require.NoError(t, err)
	require.Empty(t, got)
	for _, p := range []uint32{0, 5, 5, 1 << 20, 0xffffffff} {
		put(t, s, p, "b", fmt.Appendf(nil, "k%d", p), "v")
		put(t, s, p, "c", fmt.Appendf(nil, "k%d", p), "v")
	}
	// Metadata, hints and actors are not objects.
	require.NoError(t, s.PutMeta("x", []byte("y")))
	_, err = s.Actor(9)
	require.NoError(t, err)
	got, err = s.ObjectPartitions()
	require.NoError(t, err)
	require.Equal(t, []uint32{0, 5, 1 << 20, 0xffffffff}, got)
}

func TestScanPartitionFilteredDecodesOnlyWhatItKeeps(t *testing.T) {
	s := openTest(t)
	for i := range 10 {
		put(t, s, 2, "b", fmt.Appendf(nil, "k%d", i), fmt.Sprint(i))
	}
	var got []string
	require.NoError(t, s.ScanPartitionFiltered(2, func(_ string, key []byte) bool { return key[1]%2 == 0 },
		func(bucket string, key []byte, obj dvv.Object) (bool, error) {
			got = append(got, string(key)+"="+liveValue(obj))
			return true, nil
		}))
	require.Equal(t, []string{"k0=0", "k2=2", "k4=4", "k6=6", "k8=8"}, got)
}

// TestCutSnapshotCountsEveryWriteOnce is the property a tree rebuild needs:
// with writers running, every write is either in the snapshot or seen by
// the hook after the cut, never both and never neither.
func TestCutSnapshotCountsEveryWriteOnce(t *testing.T) {
	o := testOptions(t.TempDir())
	o.NoSyncWrites = true
	var afterCut atomic.Bool
	var hooked atomic.Int64 // new keys the hook saw after the cut
	o.OnObjectWrite = func(_ uint32, _ string, _ []byte, _ dvv.Object, hadOld bool, _ dvv.Object) {
		if afterCut.Load() && !hadOld {
			hooked.Add(1)
		}
	}
	s := openWith(t, o)
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Modify(1, "b", fmt.Appendf(nil, "w%d-%d", w, i), false, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
					return mustUpdate(cur.Update(cur.VV, "n1.test", []byte("v"), false, 1)), true, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return written.Load() >= 50 }, 10*time.Second, time.Millisecond)
	snap, err := s.CutSnapshot(func() { afterCut.Store(true) })
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hooked.Load() >= 50 }, 10*time.Second, time.Millisecond)
	close(stop)
	wg.Wait()
	inSnap := 0
	require.NoError(t, snap.ScanPartition(1, func(_ string, _ []byte, _ dvv.Object, size int) (bool, error) {
		require.Positive(t, size)
		inSnap++
		return true, nil
	}))
	require.NoError(t, snap.Close())
	require.NoError(t, snap.Close(), "closing twice does nothing")
	require.Len(t, scanAll(t, s, 1), int(written.Load()))
	require.Equal(t, written.Load(), int64(inSnap)+hooked.Load())
}

func TestCloseWaitsForAnOpenSnapshot(t *testing.T) {
	s, err := Open(testOptions(t.TempDir()))
	require.NoError(t, err)
	put(t, s, 1, "b", []byte("k"), "v")
	snap, err := s.CutSnapshot(func() {})
	require.NoError(t, err)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	require.Eventually(t, s.closing.Load, 10*time.Second, time.Millisecond)
	// Close is waiting for the snapshot; a scan of it stops at once.
	require.ErrorIs(t, snap.ScanPartition(1, func(string, []byte, dvv.Object, int) (bool, error) { return true, nil }), ErrClosed)
	require.NoError(t, snap.Close())
	require.NoError(t, <-closed)
	_, err = s.CutSnapshot(func() { t.Fatal("cut after Close") })
	require.ErrorIs(t, err, ErrClosed)
}
