package antientropy

import (
	"fmt"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/stretchr/testify/require"
)

// divergent returns two replicas of a 16-segment partition that differ in
// several segments.
func divergent(t *testing.T) (a, b *replica) {
	a, b = newReplica(t, Shape{16, 4}), newReplica(t, Shape{16, 4})
	for i := range 40 {
		key := fmt.Appendf(nil, "k%02d", i)
		a.put("b", key, uint64(i+1))
		switch i % 4 {
		case 0:
			b.put("b", key, uint64(i+1))
		case 1:
			b.put("b", key, uint64(i+100))
		case 2: // missing on b
		case 3:
			b.put("b", key, uint64(i+1))
			a.put("b", key, Absent)
		}
	}
	return a, b
}

// advance feeds honest answers until the exchange's pending query is of
// the given kind.
func advance(t *testing.T, x *Exchange, a, b *replica, kind QueryKind) {
	for x.Pending().Kind != kind {
		q := x.Pending()
		var local []KeyVersion
		if q.Kind == QueryKeys {
			local = a.keys(t, q.Segments)
		}
		step, err := x.Feed(b.answer(t, q), local)
		require.NoError(t, err)
		require.False(t, step.Done, "exchange ended before reaching %v", kind)
	}
}

func TestExchangeRejectsGarbage(t *testing.T) {
	a, b := divergent(t)
	// keysOf answers a key query honestly, then lets the test break it.
	keysOf := func(x *Exchange, r *replica, f func([]KeyVersion) []KeyVersion) []KeyVersion {
		return f(r.keys(t, x.Pending().Segments))
	}
	foreign := func(x *Exchange) KeyVersion {
		// A key from a segment the query did not ask for.
		asked, err := NewSegmentSet(a.tree.Shape(), x.Pending().Segments)
		require.NoError(t, err)
		for i := 0; ; i++ {
			k := KeyVersion{Bucket: "b", Key: fmt.Appendf(nil, "stray%d", i), Version: 1}
			if !asked.Has(k.Bucket, k.Key) {
				return k
			}
		}
	}
	tests := []struct {
		name  string
		at    QueryKind
		feed  func(x *Exchange) (Answer, []KeyVersion)
		isErr error
		want  string
	}{
		{"shape of another partition size", QueryRoot, func(*Exchange) (Answer, []KeyVersion) {
			return Answer{Shape: Shape{32, 4}, Root: 1}, nil
		}, cairn.ErrProtocol, "32 segments/4 branches"},
		{"no shape", QueryRoot, func(*Exchange) (Answer, []KeyVersion) {
			return Answer{Root: 1}, nil
		}, cairn.ErrProtocol, "0 segments/0 branches"},
		{"too few branches", QueryBranches, func(*Exchange) (Answer, []KeyVersion) {
			return Answer{Hashes: make([]uint64, 3)}, nil
		}, cairn.ErrProtocol, "3 branch hashes, want 4"},
		{"too many branches", QueryBranches, func(*Exchange) (Answer, []KeyVersion) {
			return Answer{Hashes: make([]uint64, 5)}, nil
		}, cairn.ErrProtocol, "5 branch hashes, want 4"},
		{"segments missing", QuerySegments, func(x *Exchange) (Answer, []KeyVersion) {
			return Answer{Hashes: make([]uint64, 4*len(x.Pending().Branches)-1)}, nil
		}, cairn.ErrProtocol, "segment hashes"},
		{"unsorted keys", QueryKeys, func(x *Exchange) (Answer, []KeyVersion) {
			return Answer{Keys: keysOf(x, b, func(k []KeyVersion) []KeyVersion {
				k[0], k[1] = k[1], k[0]
				return k
			})}, a.keys(t, x.Pending().Segments)
		}, cairn.ErrProtocol, "not strictly ascending"},
		{"duplicate key", QueryKeys, func(x *Exchange) (Answer, []KeyVersion) {
			return Answer{Keys: keysOf(x, b, func(k []KeyVersion) []KeyVersion {
				return append(k[:1], k...)
			})}, a.keys(t, x.Pending().Segments)
		}, cairn.ErrProtocol, "not strictly ascending"},
		{"key from a segment not asked for", QueryKeys, func(x *Exchange) (Answer, []KeyVersion) {
			return Answer{Keys: []KeyVersion{foreign(x)}}, a.keys(t, x.Pending().Segments)
		}, cairn.ErrProtocol, "was not asked for"},
		{"caller's own key list unsorted", QueryKeys, func(x *Exchange) (Answer, []KeyVersion) {
			local := keysOf(x, a, func(k []KeyVersion) []KeyVersion {
				k[0], k[len(k)-1] = k[len(k)-1], k[0]
				return k
			})
			return b.answer(t, x.Pending()), local
		}, cairn.ErrInvalidArgument, "local key list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := NewExchange(a.tree, ExchangeConfig{SegmentsPerRound: 16, MaxKeys: 1000})
			require.NoError(t, err)
			advance(t, x, a, b, tt.at)
			ans, local := tt.feed(x)
			_, err = x.Feed(ans, local)
			require.ErrorIs(t, err, tt.isErr)
			require.ErrorContains(t, err, tt.want)
			require.True(t, x.Done())
			require.Equal(t, Query{}, x.Pending())
			// The error is final: an honest answer now changes nothing.
			_, again := x.Feed(b.answer(t, Query{Kind: QueryRoot}), nil)
			require.Equal(t, err, again)
			require.Equal(t, err, x.Err())
		})
	}
}

func TestExchangeFeedAfterDone(t *testing.T) {
	a := newReplica(t, Shape{16, 4})
	x, err := NewExchange(a.tree, DefaultExchangeConfig())
	require.NoError(t, err)
	step, err := x.Feed(a.answer(t, x.Pending()), nil)
	require.NoError(t, err)
	require.True(t, step.Done)
	require.NoError(t, x.Err())
	_, err = x.Feed(a.answer(t, Query{Kind: QueryRoot}), nil)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
}

// TestExchangeRoundBound: no key round asks for more than SegmentsPerRound
// segments, and every differing segment is asked for exactly once.
func TestExchangeRoundBound(t *testing.T) {
	a, b := divergent(t)
	want, err := a.tree.Diff(b.tree)
	require.NoError(t, err)
	require.Greater(t, len(want), 3, "the fixture must need several rounds")
	rounds, x := exchange(t, a, b, ExchangeConfig{SegmentsPerRound: 3, MaxKeys: 1000})
	require.NoError(t, x.Err())
	var asked []int
	for _, rd := range rounds {
		if rd.query.Kind == QueryKeys {
			require.LessOrEqual(t, len(rd.query.Segments), 3)
			asked = append(asked, rd.query.Segments...)
		}
	}
	require.Equal(t, want, asked)
	require.Equal(t, len(want), x.Stats().SegmentsCompared)
}

func TestQueryValidate(t *testing.T) {
	shape := Shape{16, 4}
	tests := []struct {
		q    Query
		want string // "" for valid
	}{
		{Query{Kind: QueryRoot}, ""},
		{Query{Kind: QueryBranches}, ""},
		{Query{Kind: QuerySegments, Branches: []int{0, 3}}, ""},
		{Query{Kind: QueryKeys, Segments: []int{0, 7, 15}}, ""},
		{Query{}, "unknown kind"},
		{Query{Kind: 9}, "unknown kind"},
		{Query{Kind: QueryRoot, Segments: []int{1}}, "carries"},
		{Query{Kind: QuerySegments}, "branches: none"},
		{Query{Kind: QuerySegments, Branches: []int{4}}, "4 out of range [0, 4)"},
		{Query{Kind: QuerySegments, Branches: []int{-1}}, "out of range"},
		{Query{Kind: QuerySegments, Branches: []int{2, 2}}, "not strictly ascending"},
		{Query{Kind: QuerySegments, Branches: []int{1}, Segments: []int{1}}, "carries segments"},
		{Query{Kind: QueryKeys, Segments: []int{3, 1}}, "not strictly ascending"},
		{Query{Kind: QueryKeys, Segments: []int{16}}, "16 out of range [0, 16)"},
		{Query{Kind: QueryKeys, Segments: []int{1}, Branches: []int{1}}, "carries branches"},
	}
	for _, tt := range tests {
		err := tt.q.Validate(shape)
		if tt.want == "" {
			require.NoError(t, err, "%+v", tt.q)
			continue
		}
		require.ErrorIs(t, err, cairn.ErrProtocol, "%+v", tt.q)
		require.ErrorContains(t, err, tt.want)
	}
}

func TestTreeAnswer(t *testing.T) {
	a, _ := divergent(t)
	ans, err := a.tree.Answer(Query{Kind: QueryRoot})
	require.NoError(t, err)
	require.Equal(t, Answer{Shape: Shape{16, 4}, Root: a.tree.Root()}, ans)

	ans, err = a.tree.Answer(Query{Kind: QueryBranches})
	require.NoError(t, err)
	require.Equal(t, a.tree.Branches(), ans.Hashes)

	ans, err = a.tree.Answer(Query{Kind: QuerySegments, Branches: []int{1, 3}})
	require.NoError(t, err)
	require.Equal(t, append(a.tree.Segments(1), a.tree.Segments(3)...), ans.Hashes)

	_, err = a.tree.Answer(Query{Kind: QueryKeys, Segments: []int{1}})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument, "key lists come from storage")
	_, err = a.tree.Answer(Query{Kind: QuerySegments, Branches: []int{9}})
	require.ErrorIs(t, err, cairn.ErrProtocol)
}

func TestExchangeConfigValidate(t *testing.T) {
	require.NoError(t, DefaultExchangeConfig().Validate())
	err := ExchangeConfig{}.Validate()
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.ErrorContains(t, err, "segments per round 0: want at least 1; max keys 0: want at least 1")
	_, err = NewExchange(newReplica(t, Shape{1, 1}).tree, ExchangeConfig{SegmentsPerRound: 1})
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
}

// TestTreeBranchesAreXORs ties the levels together: each branch is the XOR
// of its segments and the root the XOR of the branches.
func TestTreeBranchesAreXORs(t *testing.T) {
	a, _ := divergent(t)
	var root uint64
	for b, h := range a.tree.Branches() {
		var x uint64
		for _, s := range a.tree.Segments(b) {
			x ^= s
		}
		require.Equal(t, x, h, "branch %d", b)
		root ^= h
	}
	require.Equal(t, root, a.tree.Root())
	require.NotZero(t, root)
	require.Panics(t, func() { a.tree.Segments(4) })
}
