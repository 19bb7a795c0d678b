package store

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// testOptions keep pebble's memory small: tests open many stores.
func testOptions(dir string) Options {
	o := DefaultOptions(dir, "n1")
	o.CacheBytes = 8 << 20
	o.MemTableBytes = 4 << 20
	return o
}

func openAt(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func openTest(t testing.TB) *Store { return openAt(t, t.TempDir()) }

// put writes a one-sibling object whose value is v.
func put(t testing.TB, s *Store, p uint32, bucket string, key []byte, v string) dvv.Object {
	t.Helper()
	obj, err := s.Modify(p, bucket, key, true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
		return mustUpdate(cur.Update(cur.VV, "n1.test", []byte(v), false, 1)), true, nil
	})
	require.NoError(t, err)
	return obj
}

func valueOf(t testing.TB, s *Store, p uint32, bucket string, key []byte) (string, bool) {
	t.Helper()
	obj, found, err := s.Get(p, bucket, key)
	require.NoError(t, err)
	if !found {
		return "", false
	}
	require.Len(t, obj.Siblings, 1)
	return string(obj.Siblings[0].Value), true
}

type entry struct {
	bucket string
	key    string
}

func scanAll(t testing.TB, s *Store, p uint32) []entry {
	t.Helper()
	var got []entry
	require.NoError(t, s.ScanPartition(p, func(bucket string, key []byte, _ dvv.Object) (bool, error) {
		got = append(got, entry{bucket, string(key)})
		return true, nil
	}))
	return got
}

func TestOpenReportsEveryBadOption(t *testing.T) {
	o := Options{CacheBytes: -1, MemTableBytes: 10, LockStripes: 3}
	_, err := Open(o)
	require.Error(t, err)
	for _, want := range []string{"Dir is empty", "Node \"\"", "CacheBytes -1", "MemTableBytes 10", "LockStripes 3"} {
		require.ErrorContains(t, err, want)
	}
	o = DefaultOptions(t.TempDir(), strings.Repeat("n", 256))
	_, err = Open(o)
	require.ErrorContains(t, err, "must be 1 to 255 bytes")

	// Zero sizes mean the defaults.
	require.NoError(t, Options{Dir: "d", Node: "n"}.Validate())
}

func TestGetReturnsWhatModifyWrote(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)

	_, found, err := s.Get(1, "b", []byte("k"))
	require.NoError(t, err)
	require.False(t, found)

	objects := map[string]dvv.Object{
		"value":     mustUpdate(dvv.Object{}.Update(nil, "n1.a", []byte("v"), false, 10)),
		"empty":     mustUpdate(dvv.Object{}.Update(nil, "n1.a", []byte{}, false, 11)),
		"nil":       mustUpdate(dvv.Object{}.Update(nil, "n1.a", nil, false, 12)),
		"tombstone": mustUpdate(dvv.Object{}.Update(nil, "n1.a", nil, true, 13)),
		"large":     mustUpdate(dvv.Object{}.Update(nil, "n1.a", bytes.Repeat([]byte{0xc1}, 3<<20), false, 14)),
		"siblings": dvv.Sync(mustUpdate(dvv.Object{}.Update(nil, "n1.a", []byte("x"), false, 1)),
			mustUpdate(dvv.Object{}.Update(nil, "n2.b", []byte("y"), false, 2))),
	}
	for k, o := range objects {
		got, err := s.Modify(1, "b", []byte(k), true, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
			require.False(t, found)
			require.True(t, cur.Empty())
			return o, true, nil
		})
		require.NoError(t, err)
		require.Equal(t, o, got)
	}
	check := func(s *Store) {
		for k, o := range objects {
			got, found, err := s.Get(1, "b", []byte(k))
			require.NoError(t, err)
			require.True(t, found, k)
			require.Equal(t, o, got, k)
		}
	}
	check(s)
	tomb, _, err := s.Get(1, "b", []byte("tombstone"))
	require.NoError(t, err)
	require.False(t, tomb.Found(), "a tombstone-only object is stored but reads as not found")

	require.NoError(t, s.Close())
	s = openAt(t, dir)
	check(s)
}

func TestBucketAndKeyEdgeCases(t *testing.T) {
	s := openTest(t)
	// Pairs whose concatenations collide, buckets that look like length
	// prefixes, 0x00 and 0xff everywhere, and the largest sizes.
	pairs := []entry{
		{"", ""},
		{"", "k"},
		{"a", "bc"},
		{"ab", "c"},
		{"abc", ""},
		{"\x01a", ""},
		{"", "\x01a"},
		{"\x00", "\x00"},
		{"\x00\x00", ""},
		{"\xff", "\xff\xff"},
		{strings.Repeat("\xff", MaxBucketBytes), strings.Repeat("\xff", MaxKeyBytes)},
		{strings.Repeat("b", 127), "k"},
		{strings.Repeat("b", 128), "k"},
	}
	for i, e := range pairs {
		put(t, s, 9, e.bucket, []byte(e.key), fmt.Sprint(i))
	}
	for i, e := range pairs {
		v, found := valueOf(t, s, 9, e.bucket, []byte(e.key))
		require.True(t, found, "%q/%q", e.bucket, e.key)
		require.Equal(t, fmt.Sprint(i), v, "%q/%q", e.bucket, e.key)
	}
	require.ElementsMatch(t, pairs, scanAll(t, s, 9))

	for name, e := range map[string]entry{
		"bucket too long": {strings.Repeat("b", MaxBucketBytes+1), "k"},
		"key too long":    {"b", strings.Repeat("k", MaxKeyBytes+1)},
	} {
		_, err := s.Modify(9, e.bucket, []byte(e.key), true, func(dvv.Object, bool) (dvv.Object, bool, error) {
			t.Fatalf("%s: fn called for an invalid key", name)
			return dvv.Object{}, false, nil
		})
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, name)
		_, _, err = s.Get(9, e.bucket, []byte(e.key))
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, name)
	}
	require.Len(t, scanAll(t, s, 9), len(pairs))
}

func TestObjectKeyDecodes(t *testing.T) {
	for _, e := range []entry{{"", ""}, {"b", "\x00"}, {strings.Repeat("x", 200), "\xff"}} {
		for _, p := range []uint32{0, 1, 0xffffffff} {
			k, err := objectKey(p, e.bucket, []byte(e.key))
			require.NoError(t, err)
			gp, gb, gk, err := decodeObjectKey(k)
			require.NoError(t, err)
			require.Equal(t, p, gp)
			require.Equal(t, e.bucket, gb)
			require.Equal(t, e.key, string(gk))
		}
	}
	for _, bad := range [][]byte{nil, {'o', 0, 0, 0}, {'m', 0, 0, 0, 0, 0}, {'o', 0, 0, 0, 0, 5, 'a'}, {'o', 0, 0, 0, 0, 0x80}} {
		_, _, _, err := decodeObjectKey(bad)
		require.ErrorIs(t, err, ErrCorrupt, "%x", bad)
	}
	require.Equal(t, []byte{'p'}, upperBound([]byte{'o', 0xff, 0xff, 0xff, 0xff}))
	require.Equal(t, []byte{'o', 0, 0, 1}, upperBound([]byte{'o', 0, 0, 0, 0xff}))
	require.Nil(t, upperBound([]byte{0xff, 0xff}))
}

// The record kinds must never share a first byte: a partition scan or drop
// would reach into another kind's records.
func TestPrefixesAreDistinct(t *testing.T) {
	prefixes := []byte{prefixObject, prefixMeta, prefixIncarnation, prefixHint, prefixAntiEntropy}
	seen := map[byte]bool{}
	for _, p := range prefixes {
		require.False(t, seen[p], "prefix %q used twice", p)
		seen[p] = true
	}
	require.NotEqual(t, incarnationActor, incarnationRunning)
}

var edgePartitions = []uint32{0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff}

func TestPartitionsAreIsolated(t *testing.T) {
	s := openTest(t)
	// Keys of 0xff bytes sit at the very end of their partition's range and
	// empty ones at its start: a bound off by one byte would leak them.
	keys := []entry{{"", ""}, {"b", "k"}, {"\xff", strings.Repeat("\xff", 16)}}
	for _, p := range edgePartitions {
		for _, e := range keys {
			put(t, s, p, e.bucket, []byte(e.key), fmt.Sprint(p))
		}
	}
	require.NoError(t, s.PutMeta("ring", []byte("state")))
	_, err := s.Actor(0xffffffff)
	require.NoError(t, err)

	for _, p := range edgePartitions {
		var n int
		require.NoError(t, s.ScanPartition(p, func(bucket string, key []byte, obj dvv.Object) (bool, error) {
			require.Equal(t, fmt.Sprint(p), string(obj.Siblings[0].Value), "partition %#x saw %q/%q", p, bucket, key)
			n++
			return true, nil
		}))
		require.Equal(t, len(keys), n, "partition %#x", p)
		for _, e := range keys {
			v, found := valueOf(t, s, p, e.bucket, []byte(e.key))
			require.True(t, found)
			require.Equal(t, fmt.Sprint(p), v)
		}
	}
	require.Empty(t, scanAll(t, s, 3))
	require.Empty(t, scanAll(t, s, 0x7ffffffe))
}

func TestDropPartitionTouchesNoOther(t *testing.T) {
	s := openTest(t)
	for _, p := range edgePartitions {
		put(t, s, p, "b", []byte("k"), "v")
		put(t, s, p, "\xff", []byte("\xff\xff"), "v")
	}
	require.NoError(t, s.PutMeta("ring", []byte("state")))
	for _, dropped := range []uint32{0, 0xffffffff, 0x80000000} {
		require.NoError(t, s.DropPartition(dropped))
		require.Empty(t, scanAll(t, s, dropped))
		_, found := valueOf(t, s, dropped, "b", []byte("k"))
		require.False(t, found)
	}
	for _, p := range []uint32{1, 2, 0x7fffffff, 0xfffffffe} {
		require.Len(t, scanAll(t, s, p), 2, "partition %#x", p)
	}
	v, found, err := s.GetMeta("ring")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "state", string(v))
}

func TestScanPartitionOrderAndStops(t *testing.T) {
	s := openTest(t)
	want := []entry{
		{"", "a"},
		{"b", ""}, {"b", "\x00"}, {"b", "a"}, {"b", "ab"}, {"b", "b"}, {"b", "\xff"},
		{"c", "a"},
		{"bb", "a"},
	}
	for _, i := range []int{5, 2, 8, 0, 7, 3, 1, 6, 4} {
		put(t, s, 4, want[i].bucket, []byte(want[i].key), "v")
	}
	require.Equal(t, want, scanAll(t, s, 4), "buckets by length then bytes, keys bytewise")

	var seen int
	require.NoError(t, s.ScanPartition(4, func(string, []byte, dvv.Object) (bool, error) {
		seen++
		return seen < 3, nil
	}))
	require.Equal(t, 3, seen)

	stop := errors.New("stop here")
	seen = 0
	err := s.ScanPartition(4, func(string, []byte, dvv.Object) (bool, error) {
		seen++
		return true, stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, seen)
}

func TestScanPartitionSeesOneConsistentView(t *testing.T) {
	s := openTest(t)
	put(t, s, 5, "b", []byte("1"), "old")
	put(t, s, 5, "b", []byte("3"), "old")
	var got []string
	err := s.ScanPartition(5, func(_ string, key []byte, obj dvv.Object) (bool, error) {
		got = append(got, string(key)+"="+string(obj.Siblings[0].Value))
		if string(key) == "1" {
			// The scan holds no lock: fn may write, and the writes stay
			// outside the view the scan started with.
			for _, k := range []string{"2", "3", "4"} {
				_, err := s.Modify(5, "b", []byte(k), false, func(dvv.Object, bool) (dvv.Object, bool, error) {
					return mustUpdate(dvv.Object{}.Update(nil, "n1.x", []byte("new"), false, 2)), true, nil
				})
				require.NoError(t, err)
			}
		}
		return true, nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"1=old", "3=old"}, got)
	require.Len(t, scanAll(t, s, 5), 4)
}

func TestModifyWithoutWriteChangesNothing(t *testing.T) {
	s := openTest(t)
	before := put(t, s, 1, "b", []byte("k"), "v")
	writes := s.Stats().Writes

	got, err := s.Modify(1, "b", []byte("k"), true, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		require.True(t, found)
		require.Equal(t, before, cur)
		return mustUpdate(cur.Update(nil, "n1.x", []byte("ignored"), false, 2)), false, nil
	})
	require.NoError(t, err)
	require.Equal(t, before, got, "Modify returns cur when fn chose not to write")
	after, _, err := s.Get(1, "b", []byte("k"))
	require.NoError(t, err)
	require.Equal(t, before, after)
	require.Equal(t, writes, s.Stats().Writes)

	got, err = s.Modify(1, "b", []byte("absent"), true, func(cur dvv.Object, found bool) (dvv.Object, bool, error) {
		require.False(t, found)
		return cur, false, nil
	})
	require.NoError(t, err)
	require.True(t, got.Empty())
	_, found, err := s.Get(1, "b", []byte("absent"))
	require.NoError(t, err)
	require.False(t, found)
}

func TestModifyErrorChangesNothing(t *testing.T) {
	s := openTest(t)
	before := put(t, s, 1, "b", []byte("k"), "v")
	refused := errors.New("refused")
	for _, key := range []string{"k", "absent"} {
		_, err := s.Modify(1, "b", []byte(key), true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
			return mustUpdate(cur.Update(nil, "n1.x", []byte("w"), false, 2)), true, refused
		})
		require.ErrorIs(t, err, refused)
	}
	after, _, err := s.Get(1, "b", []byte("k"))
	require.NoError(t, err)
	require.Equal(t, before, after)
	_, found, err := s.Get(1, "b", []byte("absent"))
	require.NoError(t, err)
	require.False(t, found)
}

// Every goroutine adds a sibling with a nil context, so every write must
// survive: a read-modify-write that interleaved with another would mint a
// dot twice or write over a sibling.
func TestConcurrentModifyLosesNoUpdate(t *testing.T) {
	s := openTest(t)
	const writers, perWriter = 8, 25
	actor, err := s.Actor(1)
	require.NoError(t, err)
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for i := range perWriter {
				v := fmt.Sprintf("w%d-%d", w, i)
				// Odd writers use NoSync-able writes: the lock, not the
				// fsync, is what serialises them.
				_, err := s.Modify(1, "b", []byte("hot"), w%2 == 0, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
					return mustUpdate(cur.Update(nil, actor, []byte(v), false, int64(i))), true, nil
				})
				if err != nil {
					return err
				}
				if _, err := s.Modify(1, "b", []byte(v), false, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
					return mustUpdate(cur.Update(nil, actor, []byte(v), false, 0)), true, nil
				}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())

	obj, found, err := s.Get(1, "b", []byte("hot"))
	require.NoError(t, err)
	require.True(t, found)
	var values []string
	for _, sib := range obj.Siblings {
		values = append(values, string(sib.Value))
	}
	sort.Strings(values)
	var want []string
	for w := range writers {
		for i := range perWriter {
			want = append(want, fmt.Sprintf("w%d-%d", w, i))
		}
	}
	sort.Strings(want)
	require.Equal(t, want, values)
	require.Equal(t, uint64(writers*perWriter), obj.VV[actor])
	require.Len(t, scanAll(t, s, 1), writers*perWriter+1)
}

// A Modify held inside fn blocks only its own stripe.
func TestModifyOfOtherKeysDoesNotWait(t *testing.T) {
	s := openTest(t)
	heldKey, _ := objectKey(1, "b", []byte("held"))
	var other []byte
	for i := 0; other == nil; i++ {
		candidate := fmt.Appendf(nil, "other%d", i)
		k, _ := objectKey(1, "b", candidate)
		if s.stripeOf(k) != s.stripeOf(heldKey) {
			other = candidate
		}
	}
	entered, release := make(chan struct{}), make(chan struct{})
	heldDone := make(chan error, 1)
	go func() {
		_, err := s.Modify(1, "b", []byte("held"), true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
			close(entered)
			<-release
			return mustUpdate(cur.Update(nil, "n1.x", []byte("v"), false, 1)), true, nil
		})
		heldDone <- err
	}()
	<-entered

	otherDone := make(chan error, 1)
	go func() {
		_, err := s.Modify(1, "b", other, true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
			return mustUpdate(cur.Update(nil, "n1.x", []byte("v"), false, 1)), true, nil
		})
		if err == nil {
			// Reads never take the lock.
			_, _, err = s.Get(1, "b", []byte("held"))
		}
		otherDone <- err
	}()
	select {
	case err := <-otherDone:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("a write to another stripe waited for the held key")
	}
	close(release)
	require.NoError(t, <-heldDone)
}

func TestCorruptRecordsAreErrors(t *testing.T) {
	s := openTest(t)
	put(t, s, 1, "b", []byte("a"), "v")
	for name, rec := range map[string][]byte{
		"garbage":         {objectFormatV1, 0xdb, 0xff, 0xff, 0xff, 0xff},
		"unknown version": {9, 0x80},
	} {
		k, err := objectKey(1, "b", []byte("bad"))
		require.NoError(t, err)
		require.NoError(t, s.db.Set(k, rec, nil))

		_, _, err = s.Get(1, "b", []byte("bad"))
		require.ErrorIs(t, err, ErrCorrupt, name)
		_, err = s.Modify(1, "b", []byte("bad"), true, func(dvv.Object, bool) (dvv.Object, bool, error) {
			t.Fatalf("%s: fn called on a corrupt record", name)
			return dvv.Object{}, false, nil
		})
		require.ErrorIs(t, err, ErrCorrupt, name)
		err = s.ScanPartition(1, func(string, []byte, dvv.Object) (bool, error) { return true, nil })
		require.ErrorIs(t, err, ErrCorrupt, name)
	}
	_, _, err := s.Get(1, "b", []byte("a"))
	require.NoError(t, err, "one corrupt record does not spoil the others")
}

func TestMeta(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)
	_, found, err := s.GetMeta("ring")
	require.NoError(t, err)
	require.False(t, found)

	require.NoError(t, s.PutMeta("ring", []byte("v1")))
	require.NoError(t, s.PutMeta("ring", []byte("v2")))
	require.NoError(t, s.PutMeta("empty", nil))
	v, found, err := s.GetMeta("ring")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "v2", string(v))
	v[0] = 'x'
	v, _, err = s.GetMeta("ring")
	require.NoError(t, err)
	require.Equal(t, "v2", string(v), "GetMeta returns a copy")

	require.ErrorIs(t, s.PutMeta("", []byte("x")), cairn.ErrInvalidArgument)
	_, _, err = s.GetMeta(strings.Repeat("m", MaxMetaNameBytes+1))
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)

	require.NoError(t, s.Close())
	s = openAt(t, dir)
	v, found, err = s.GetMeta("ring")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "v2", string(v))
	v, found, err = s.GetMeta("empty")
	require.NoError(t, err)
	require.True(t, found)
	require.Empty(t, v)
}

func TestStatsCountWritesAndSyncs(t *testing.T) {
	o := testOptions(t.TempDir())
	o.NoSyncWrites = true
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })

	syncsBefore := s.Stats().WALSyncs
	for i := range 10 {
		_, err := s.Modify(1, "b", fmt.Append(nil, i), i < 4, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
			return mustUpdate(cur.Update(nil, "n1.x", []byte("v"), false, 1)), true, nil
		})
		require.NoError(t, err)
	}
	st := s.Stats()
	require.Equal(t, uint64(10), st.Writes)
	require.Equal(t, uint64(4), st.SyncedWrites)
	require.GreaterOrEqual(t, st.WALSyncs-syncsBefore, uint64(4), "each serial synced write needs an fsync")
	require.Positive(t, st.DiskBytes)
	require.Positive(t, st.WALBytes)
	require.False(t, st.UncleanStart)
}

func TestDefaultOptionsSyncEveryWrite(t *testing.T) {
	s := openTest(t)
	for i := range 3 {
		_, err := s.Modify(1, "b", fmt.Append(nil, i), false, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) {
			return mustUpdate(cur.Update(nil, "n1.x", []byte("v"), false, 1)), true, nil
		})
		require.NoError(t, err)
	}
	require.Equal(t, uint64(3), s.Stats().SyncedWrites, "without NoSyncWrites, sync=false still fsyncs")
}

func TestClosedStoreRefusesCalls(t *testing.T) {
	s, err := Open(testOptions(t.TempDir()))
	require.NoError(t, err)
	put(t, s, 1, "b", []byte("k"), "v")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice returns the first result")

	_, _, err = s.Get(1, "b", []byte("k"))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, cairn.ErrUnavailable)
	_, err = s.Modify(1, "b", []byte("k"), true, func(cur dvv.Object, _ bool) (dvv.Object, bool, error) { return cur, true, nil })
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.Actor(1)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.DropPartition(1), ErrClosed)
	require.ErrorIs(t, s.ScanPartition(1, func(string, []byte, dvv.Object) (bool, error) { return true, nil }), ErrClosed)
	_, _, err = s.GetMeta("m")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.PutMeta("m", nil), ErrClosed)
	require.Equal(t, uint64(1), s.Stats().Writes)
	require.Zero(t, s.Stats().DiskBytes)
}

// Close waits for a scan in flight, and the scan gives up at its next object.
func TestCloseStopsARunningScan(t *testing.T) {
	s, err := Open(testOptions(t.TempDir()))
	require.NoError(t, err)
	for i := range 3 {
		put(t, s, 1, "b", fmt.Append(nil, i), "v")
	}
	closed := make(chan error, 1)
	var seen int
	err = s.ScanPartition(1, func(string, []byte, dvv.Object) (bool, error) {
		seen++
		if seen == 1 {
			go func() { closed <- s.Close() }()
			deadline := time.Now().Add(30 * time.Second)
			for !s.closing.Load() {
				require.True(t, time.Now().Before(deadline), "Close never began")
				time.Sleep(time.Millisecond)
			}
		}
		return true, nil
	})
	require.ErrorIs(t, err, ErrClosed)
	require.Equal(t, 1, seen)
	require.NoError(t, <-closed)
}
