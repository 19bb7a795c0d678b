package bench

import (
	"math"
	"math/rand/v2"
)

// The key generators below follow YCSB's (site.ycsb.generator) so results
// compare with published YCSB numbers. None of them is safe for concurrent
// use: every worker owns its own copy and its own *rand.Rand.

// zipfianConstant is YCSB's skew (theta) for zipfian request distributions.
const zipfianConstant = 0.99

// zipfian draws item numbers in [0, n) with P(i) proportional to
// 1/(i+1)^theta, by Gray et al.'s "Quickly generating billion-record
// synthetic databases" (as YCSB's ZipfianGenerator). Item 0 is the most
// popular. The number of items may grow between draws (NextN): the zeta
// constant is then extended incrementally instead of recomputed.
type zipfian struct {
	items      uint64 // the n that zetan was computed for
	theta      float64
	alpha      float64
	zeta2theta float64
	zetan      float64
	eta        float64
}

// newZipfian returns a generator over items items. It computes zeta(items),
// which costs one math.Pow per item: build it once and copy the value for
// each worker.
func newZipfian(items uint64, theta float64) zipfian {
	return newZipfianWithZeta(items, theta, zeta(0, items, theta, 0))
}

func newZipfianWithZeta(items uint64, theta, zetan float64) zipfian {
	z := zipfian{
		items:      items,
		theta:      theta,
		alpha:      1 / (1 - theta),
		zeta2theta: zeta(0, 2, theta, 0),
		zetan:      zetan,
	}
	z.eta = z.etaFor(items)
	return z
}

func (z *zipfian) etaFor(n uint64) float64 {
	return (1 - math.Pow(2/float64(n), 1-z.theta)) / (1 - z.zeta2theta/z.zetan)
}

// zeta returns sum over i in [from, to) of 1/(i+1)^theta, added to sum.
func zeta(from, to uint64, theta, sum float64) float64 {
	for i := from; i < to; i++ {
		sum += 1 / math.Pow(float64(i+1), theta)
	}
	return sum
}

// Next draws from the generator's own item count.
func (z *zipfian) Next(r *rand.Rand) uint64 { return z.NextN(r, z.items) }

// NextN draws an item in [0, n). A larger n than before extends zeta by the
// new items; a smaller one recomputes it (YCSB allows neither cheaply).
func (z *zipfian) NextN(r *rand.Rand, n uint64) uint64 {
	if n == 0 {
		return 0
	}
	if n != z.items {
		if n > z.items {
			z.zetan = zeta(z.items, n, z.theta, z.zetan)
		} else {
			z.zetan = zeta(0, n, z.theta, 0)
		}
		z.items = n
		z.eta = z.etaFor(n)
	}
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+math.Pow(0.5, z.theta) {
		return min(1, n-1)
	}
	v := uint64(float64(n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(v, n-1)
}

// YCSB's scrambled zipfian draws from a zipfian over this many items, with
// zeta precomputed for the constant 0.99, and hashes the result into the
// key space, so the popular keys are spread over it instead of clustered at
// its start.
const (
	scrambledItems = 10_000_000_000
	scrambledZetan = 26.46902820178302
)

// scrambledZipfian draws keys in [0, items) with a zipfian popularity
// (constant 0.99) whose popular keys are scattered by an FNV hash (YCSB's
// scrambledZipfianGenerator, its default request distribution).
type scrambledZipfian struct {
	items uint64
	z     zipfian
}

// newScrambledZipfian returns a generator over [0, items); items must be
// positive.
func newScrambledZipfian(items uint64) scrambledZipfian {
	return scrambledZipfian{items: items, z: newZipfianWithZeta(scrambledItems+1, zipfianConstant, scrambledZetan)}
}

// Next draws a key.
func (s *scrambledZipfian) Next(r *rand.Rand) uint64 {
	return fnv64(s.z.Next(r)) % s.items
}

// fnv64 is YCSB's Utils.fnvhash64: FNV-1a over the value's eight bytes,
// least significant first, made non-negative as a Java long.
func fnv64(v uint64) uint64 {
	h := uint64(0xCBF29CE484222325)
	for range 8 {
		h ^= v & 0xff
		h *= 1099511628211
		v >>= 8
	}
	if int64(h) < 0 {
		// Java's Math.abs; Long.MIN_VALUE stays negative there and would
		// give a negative key, so fold it to 0 instead.
		if h == 1<<63 {
			return 0
		}
		return uint64(-int64(h))
	}
	return h
}

// skewedLatest draws keys with a zipfian preference for the most recently
// inserted: key last is the most popular, last-1 the next (YCSB's
// skewedLatestGenerator, the "latest" distribution of workload D).
type skewedLatest struct {
	z zipfian
}

// newSkewedLatest returns a generator whose zeta is precomputed for items
// keys; it grows as keys are inserted.
func newSkewedLatest(items uint64) skewedLatest {
	return skewedLatest{z: newZipfian(items, zipfianConstant)}
}

// Next draws a key in [0, last].
func (s *skewedLatest) Next(r *rand.Rand, last uint64) uint64 {
	return last - s.z.NextN(r, last+1)
}
