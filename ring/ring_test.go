package ring

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name       string
		partitions int
		members    []string
		want       string
	}{
		{"zero partitions", 0, nil, "power of two"},
		{"negative partitions", -4, nil, "power of two"},
		{"not a power of two", 1000, []string{"a"}, "power of two"},
		{"too many partitions", 2 * MaxPartitions, []string{"a"}, "power of two"},
		{"duplicate member", 16, []string{"a", "b", "a"}, `duplicate member "a"`},
		{"empty name", 16, []string{"a", ""}, "empty member name"},
		{"too many members", 16, sequentialNames(MaxMembers + 1), "at most"},
		{"too many pairs", MaxPartitions, sequentialNames(MaxPairs/MaxPartitions + 1), "use fewer partitions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.partitions, tc.members)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%d, ...) = %v, %v; want an error containing %q", tc.partitions, r, err, tc.want)
			}
		})
	}
}

func TestEmptyRing(t *testing.T) {
	r := mustNew(t, 64, nil)
	if len(r.Members()) != 0 || r.Partitions() != 64 {
		t.Fatalf("members %q, partitions %d", r.Members(), r.Partitions())
	}
	if got := r.Owner(0); got != "" {
		t.Fatalf("Owner(0) = %q on an empty ring", got)
	}
	if pri, fb := r.Preference(0, 3); pri != nil || fb != nil {
		t.Fatalf("Preference on an empty ring = %q, %q", pri, fb)
	}
	if p := r.KeyPartition("b", []byte("k")); p >= 64 {
		t.Fatalf("KeyPartition = %d on an empty ring of 64", p)
	}
	if r.Version() == mustNew(t, 128, nil).Version() {
		t.Fatal("empty rings of different Q share a version")
	}
}

// TestUntrustedPartition: partition numbers arrive from the network, so one
// outside the ring gets an empty answer, never a panic.
func TestUntrustedPartition(t *testing.T) {
	r := mustNew(t, 16, []string{"a", "b", "c"})
	for _, p := range []uint32{16, 17, 1 << 31, ^uint32(0)} {
		if o := r.Owner(p); o != "" {
			t.Fatalf("Owner(%d) = %q", p, o)
		}
		if pri, fb := r.Preference(p, 3); pri != nil || fb != nil {
			t.Fatalf("Preference(%d) = %q, %q", p, pri, fb)
		}
	}
	if got := r.Owned("nobody"); got != nil {
		t.Fatalf("Owned of a non-member = %v", got)
	}
}

// TestRingSharesNothingWithCallers: a Ring is immutable, so neither the
// slice given to New nor the slices it hands out may alias its state.
func TestRingSharesNothingWithCallers(t *testing.T) {
	input := []string{"c", "a", "b"}
	r := mustNew(t, 16, input)
	before := owners(r)
	input[0] = "z"
	members := r.Members()
	members[0] = "z"
	owned := r.Owned("a")
	owned[0] = 99
	if !slices.Equal(r.Members(), []string{"a", "b", "c"}) || !slices.Equal(owners(r), before) || r.Owned("a")[0] == 99 {
		t.Fatalf("ring changed through a caller's slice: members %q", r.Members())
	}
}

func TestVersionDistinguishesAmbiguousNames(t *testing.T) {
	a, b := mustNew(t, 16, []string{"ab", "c"}), mustNew(t, 16, []string{"a", "bc"})
	if a.Version() == b.Version() {
		t.Fatal(`members {"ab","c"} and {"a","bc"} share a version`)
	}
}

// TestKeyHashUnambiguous: bucket and key are hashed with the bucket's length
// in front, so moving bytes between them always changes the hash.
func TestKeyHashUnambiguous(t *testing.T) {
	pairs := []struct{ bucket, key string }{
		{"ab", "c"}, {"a", "bc"}, {"", "abc"}, {"abc", ""}, {"\x01a", "bc"}, {"", "\x02abc"},
	}
	seen := map[uint64]int{}
	for i, pr := range pairs {
		h := keyHash(pr.bucket, []byte(pr.key))
		if j, dup := seen[h]; dup {
			t.Fatalf("(%q, %q) and (%q, %q) hash alike", pr.bucket, pr.key, pairs[j].bucket, pairs[j].key)
		}
		seen[h] = i
	}
	r := mustNew(t, MaxPartitions, nil)
	if r.KeyPartition("ab", []byte("c")) == r.KeyPartition("a", []byte("bc")) {
		t.Fatal(`("ab","c") and ("a","bc") share a partition at Q=65536`)
	}
}

// TestGolden pins placement. Nodes of different builds must agree on where
// every key lives, and partition numbers are stored with the data: if this
// test fails, the change re-homes data in running clusters. Such a change
// needs a new claimAlgorithm name and a migration story, not new numbers
// pasted here.
func TestGolden(t *testing.T) {
	keys := []struct {
		bucket, key string
		hash        uint64
		partition   uint32 // at Q = 1024
	}{
		{"", "", 0xe934a84adb052768, 932},
		{"users", "alice", 0xa8596404ac3ba6ca, 673},
		{"users", "bob", 0x8576c5c132b91eea, 533},
		{"ab", "c", 0xa9aac9f8908ad427, 678},
		{"a", "bc", 0x899855c5c500bc83, 550},
	}
	r := mustNew(t, DefaultPartitions, nil)
	for _, k := range keys {
		if h, p := keyHash(k.bucket, []byte(k.key)), r.KeyPartition(k.bucket, []byte(k.key)); h != k.hash || p != k.partition {
			t.Errorf("(%q, %q): hash %#x partition %d, want %#x %d", k.bucket, k.key, h, p, k.hash, k.partition)
		}
	}

	small := mustNew(t, 16, []string{"n4", "n2", "n3", "n1"})
	want := []string{"n1", "n3", "n2", "n4", "n4", "n3", "n3", "n3", "n2", "n4", "n2", "n1", "n1", "n1", "n2", "n4"}
	if got := owners(small); !slices.Equal(got, want) {
		t.Errorf("owners at Q=16, n1..n4:\n got %q\nwant %q", got, want)
	}
	if v := small.Version(); v != 0xf2300a5eece9fd65 {
		t.Errorf("version at Q=16, n1..n4 = %#x", v)
	}
	if v := mustNew(t, DefaultPartitions, sequentialNames(5)).Version(); v != 0x9630e528102ad3dd {
		t.Errorf("version at Q=1024, n1..n5 = %#x", v)
	}
}

// TestPreferenceTiny walks rings small enough to check by eye. At Q = 8 the
// owners are (golden, from the claim):
//
//	S=2: n1 n2 n1 n1 n2 n2 n1 n2
//	S=3: n1 n2 n1 n3 n2 n2 n3 n3
//	S=4: n1 n2 n1 n4 n4 n2 n3 n3
func TestPreferenceTiny(t *testing.T) {
	for _, tc := range []struct {
		members              int
		p                    uint32
		n                    int
		primaries, fallbacks []string
	}{
		{1, 0, 3, []string{"n1"}, []string{}},
		{1, 7, 3, []string{"n1"}, []string{}},
		{2, 0, 3, []string{"n1", "n2"}, []string{}},
		{2, 2, 3, []string{"n1", "n2"}, []string{}}, // skips n1 at 3
		{2, 4, 3, []string{"n2", "n1"}, []string{}},
		{2, 7, 3, []string{"n2", "n1"}, []string{}}, // wraps: 7, 0
		{3, 0, 3, []string{"n1", "n2", "n3"}, []string{}},
		{3, 4, 3, []string{"n2", "n3", "n1"}, []string{}},
		{3, 6, 3, []string{"n3", "n1", "n2"}, []string{}},
		{3, 6, 2, []string{"n3", "n1"}, []string{"n2"}},
		{3, 4, 1, []string{"n2"}, []string{"n3", "n1"}},
		{3, 4, 0, []string{}, []string{"n2", "n3", "n1"}},
		{4, 3, 3, []string{"n4", "n2", "n3"}, []string{"n1"}},
		{4, 7, 3, []string{"n3", "n1", "n2"}, []string{"n4"}},
	} {
		r := mustNew(t, 8, sequentialNames(tc.members))
		primaries, fallbacks := r.Preference(tc.p, tc.n)
		if !slices.Equal(primaries, tc.primaries) || !slices.Equal(fallbacks, tc.fallbacks) {
			t.Errorf("S=%d Preference(%d, %d) = %q, %q; want %q, %q",
				tc.members, tc.p, tc.n, primaries, fallbacks, tc.primaries, tc.fallbacks)
		}
	}
}

// A member in another's seat owns exactly what that name owned, and every
// other member keeps its partitions: a replacement moves nothing else.
func TestSeatedMemberOwnsItsSeatsPartitions(t *testing.T) {
	before, err := New(1024, []string{"n1", "n2", "n3", "n4"})
	require.NoError(t, err)
	after, err := NewSeated(1024, []string{"n1", "n2", "n3", "n9"}, map[string]string{"n9": "n4"})
	require.NoError(t, err)
	for p := range uint32(1024) {
		want, _ := before.Preference(p, 3)
		for i, m := range want {
			if m == "n4" {
				want[i] = "n9"
			}
		}
		got, _ := after.Preference(p, 3)
		require.Equal(t, want, got, "partition %d", p)
	}
	plain, err := New(1024, []string{"n1", "n2", "n3", "n9"})
	require.NoError(t, err)
	require.NotEqual(t, plain.Version(), after.Version(), "the seats are part of the version")
	same, err := NewSeated(1024, []string{"n9", "n3", "n2", "n1"}, map[string]string{"n9": "n4", "n1": ""})
	require.NoError(t, err)
	require.Equal(t, after.Version(), same.Version())

	_, err = NewSeated(1024, []string{"n1", "n2"}, map[string]string{"n2": "n1"})
	require.ErrorContains(t, err, `seat "n1" taken twice`)
	_, err = NewSeated(1024, []string{"n1", "n2", "n3"}, map[string]string{"n2": "n4", "n3": "n4"})
	require.ErrorContains(t, err, `seat "n4" taken twice`)
}
