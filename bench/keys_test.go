package bench

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

// The shape checks draw enough samples that a correct generator is many
// standard deviations inside the tolerances: they fail for a wrong shape,
// not for bad luck.
const draws = 200_000

func TestZipfianShape(t *testing.T) {
	const n = 1000
	z := newZipfian(n, zipfianConstant)
	r := seeded(1)
	counts := make([]int, n)
	for range draws {
		v := z.Next(r)
		if v >= n {
			t.Fatalf("drew %d of %d items", v, n)
		}
		counts[v]++
	}
	zetan := zeta(0, n, zipfianConstant, 0)
	// Items 0 and 1 are exact in Gray's method: 1/zeta(n) and
	// 0.5^theta/zeta(n).
	require.InDelta(t, 1/zetan, float64(counts[0])/draws, 0.1/zetan)
	require.InDelta(t, math.Pow(0.5, zipfianConstant)/zetan, float64(counts[1])/draws, 0.1/zetan)
	// The rest follow the power law roughly: compare bands of ranks.
	band := func(lo, hi int) (got, want float64) {
		for i := lo; i < hi; i++ {
			got += float64(counts[i]) / draws
			want += 1 / math.Pow(float64(i+1), zipfianConstant) / zetan
		}
		return got, want
	}
	for _, b := range [][2]int{{2, 10}, {10, 100}, {100, 1000}} {
		got, want := band(b[0], b[1])
		require.InDelta(t, want, got, 0.25*want, "ranks %d..%d", b[0], b[1])
	}
}

func TestZipfianGrowsAndShrinks(t *testing.T) {
	z := newZipfian(10, zipfianConstant)
	r := seeded(2)
	for _, n := range []uint64{10, 500, 50, 1, 0} {
		for range 1000 {
			v := z.NextN(r, n)
			if n == 0 {
				require.Zero(t, v)
			} else {
				require.Less(t, v, n)
			}
		}
		if n > 0 {
			// Growing extends zeta incrementally; it must match a fresh
			// computation.
			require.InDelta(t, zeta(0, n, zipfianConstant, 0), z.zetan, 1e-9)
		}
	}
}

func TestScrambledZipfianShape(t *testing.T) {
	const n = 10_000
	s := newScrambledZipfian(n)
	r := seeded(3)
	counts := make([]int, n)
	var sum float64
	for range draws {
		v := s.Next(r)
		if v >= n {
			t.Fatalf("drew %d of %d items", v, n)
		}
		counts[v]++
		sum += float64(v)
	}
	// The hottest key gets about 1/zeta(1e10) of the requests: skewed...
	hottest := 0
	for _, c := range counts {
		hottest = max(hottest, c)
	}
	require.InDelta(t, 1/scrambledZetan, float64(hottest)/draws, 0.3/scrambledZetan)
	// ...but the hot keys are scattered: the mean key is mid-range, where
	// a plain zipfian would sit near 0.
	require.InDelta(t, n/2, sum/draws, 0.15*n)
	// Half the requests go to a small set of keys.
	sorted := append([]int(nil), counts...)
	top := 0
	for i := 0; i < n/100; i++ { // the hottest 1%
		j := i
		for k := i + 1; k < n; k++ {
			if sorted[k] > sorted[j] {
				j = k
			}
		}
		sorted[i], sorted[j] = sorted[j], sorted[i]
		top += sorted[i]
	}
	// About the hottest 100 of 1e10 zipfian items: sum 1/i^0.99 / zeta = 0.2.
	require.InDelta(t, 0.2, float64(top)/draws, 0.05, "the hottest 1%% of keys take a fifth of the requests")
}

func TestSkewedLatestShape(t *testing.T) {
	const n = 1000
	s := newSkewedLatest(n)
	r := seeded(4)
	counts := map[uint64]int{}
	for range draws {
		v := s.Next(r, n-1)
		if v >= n {
			t.Fatalf("drew %d of %d items", v, n)
		}
		counts[v]++
	}
	zetan := zeta(0, n, zipfianConstant, 0)
	require.InDelta(t, 1/zetan, float64(counts[n-1])/draws, 0.1/zetan, "the latest key is the most popular")
	require.Greater(t, counts[n-1], counts[n-2])
	require.Greater(t, counts[n-2], counts[n-50])

	// As keys are inserted, the preference follows the newest.
	counts = map[uint64]int{}
	for range draws / 10 {
		counts[s.Next(r, 2*n-1)]++
	}
	require.Greater(t, counts[2*n-1], counts[n-1]*5)
}

func TestUniformChooser(t *testing.T) {
	c := newChooser(Uniform, 100)
	r := seeded(5)
	var buckets [10]int
	for range draws {
		v := c.next(r, 100)
		if v >= 100 {
			t.Fatalf("drew %d of 100 items", v)
		}
		buckets[v/10]++
	}
	for i, b := range buckets {
		require.InDelta(t, draws/10, b, draws/10*0.05, "bucket %d", i)
	}
}

func TestGeneratorsDeterministic(t *testing.T) {
	for _, d := range []Distribution{Uniform, Zipfian, Latest} {
		t.Run(string(d), func(t *testing.T) {
			tmpl := newChooser(d, 5000)
			seq := func(seed uint64) []uint64 {
				c, r := tmpl, seeded(seed)
				out := make([]uint64, 200)
				for i := range out {
					out[i] = c.next(r, 5000+uint64(i))
				}
				return out
			}
			require.Equal(t, seq(7), seq(7))
			require.NotEqual(t, seq(7), seq(8))
		})
	}
}

func TestFNV64MatchesYCSB(t *testing.T) {
	// Values of YCSB's Utils.fnvhash64, transcribed with Java long arithmetic.
	for v, want := range map[uint64]uint64{0: 0x573807cdd7e5c63b, 1: 0x7632ced6e2d5105c, 12345: 0x18e14e7a1d1233b4, 999999: 0x261813b302bb86f3} {
		require.Equal(t, want, fnv64(v), "fnv64(%d)", v)
	}
	seen := map[uint64]bool{}
	for i := range uint64(100_000) {
		h := fnv64(i)
		if seen[h] {
			t.Fatalf("collision at %d", i)
		}
		seen[h] = true
	}
}
