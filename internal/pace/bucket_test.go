package pace

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

const second int64 = 1e9

func TestBucket(t *testing.T) {
	const s = second
	b, err := NewBucket(10, 5) // 10 tokens a second, at most 5 banked
	require.NoError(t, err)

	ok, _ := b.Admit(100*s, 5)
	require.True(t, ok, "starts full")
	ok, wait := b.Admit(100*s, 1)
	require.False(t, ok, "empty now")
	require.Equal(t, s/10, wait, "one token takes 100 ms")
	require.Equal(t, 100*s+s/10, b.ReadyAt(100*s, 1))
	ok, _ = b.Admit(100*s+s/20, 1)
	require.False(t, ok, "half a token after 50 ms")
	ok, _ = b.Admit(100*s+s/10, 1)
	require.True(t, ok)
	require.InDelta(t, 5, b.Tokens(200*s), 1e-9, "refill stops at the burst")
	require.Equal(t, 200*s, b.ReadyAt(200*s, 6), "more than the burst fits a full bucket")

	// Take runs into debt and says how long until the balance is back.
	require.Zero(t, b.Take(200*s, 5), "covered by the balance")
	require.Equal(t, s/2, b.Take(200*s, 5), "5 tokens of debt take half a second")
	require.InDelta(t, -5, b.Tokens(200*s), 1e-9)
	require.Equal(t, 200*s+s/2, b.ReadyAt(200*s, 0))
	require.Equal(t, 200*s+s/2+s/10, b.ReadyAt(200*s, 1))

	// A clock that steps back refills nothing, and waits count from the
	// latest time seen.
	require.InDelta(t, -5, b.Tokens(150*s), 1e-9)
	require.Equal(t, 50*s+s/2+s/10, b.Take(150*s, 1))
	require.InDelta(t, 0, b.Tokens(200*s+6*s/10), 1e-6)
}

func TestBucketInvalid(t *testing.T) {
	for _, tt := range []struct {
		rate  float64
		burst int64
		want  string
	}{
		{0, 1, "rate 0"},
		{-1, 1, "rate -1"},
		{math.NaN(), 1, "rate NaN"},
		{math.Inf(1), 1, "rate +Inf"},
		{1, 0, "burst 0"},
		{0, 0, "rate 0: want a positive, finite number per second\nburst 0"},
	} {
		_, err := NewBucket(tt.rate, tt.burst)
		require.ErrorContains(t, err, tt.want)
	}
}

// The scripts in testdata drive one bucket; times are in milliseconds.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var b *Bucket
		ms := func(d *datadriven.TestData) int64 {
			var now string
			d.ScanArgs(t, "now", &now)
			v, err := strconv.ParseInt(now, 10, 64)
			if err != nil {
				d.Fatalf(t, "bad time %q", now)
			}
			return v * 1e6
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var n int64
			switch d.Cmd {
			case "bucket":
				var rate float64
				var burst int64
				d.ScanArgs(t, "rate", &rate)
				d.ScanArgs(t, "burst", &burst)
				var err error
				if b, err = NewBucket(rate, burst); err != nil {
					return err.Error()
				}
				return ""
			case "admit":
				d.ScanArgs(t, "n", &n)
				now := ms(d)
				if ok, wait := b.Admit(now, n); !ok {
					return fmt.Sprintf("refused; retry after %.1fms", float64(wait)/1e6)
				}
				return fmt.Sprintf("admitted; %.0f left", b.Tokens(now))
			case "take":
				d.ScanArgs(t, "n", &n)
				now := ms(d)
				return fmt.Sprintf("wait %.1fms; %.0f left", float64(b.Take(now, n))/1e6, b.Tokens(now))
			case "ready":
				d.ScanArgs(t, "n", &n)
				return fmt.Sprintf("at %.1fms", float64(b.ReadyAt(ms(d), n))/1e6)
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}

// Admit never lets more through than the rate allows over any run: what
// it admitted up to time T is at most burst + rate*T, plus one oversized
// batch (admitted whole when the bucket is full).
func TestAdmitNeverExceedsItsRate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rate := rapid.Int64Range(1, 1<<20).Draw(t, "rate")
		burst := rapid.Int64Range(1, 1<<20).Draw(t, "burst")
		b, err := NewBucket(float64(rate), burst)
		if err != nil {
			t.Fatal(err)
		}
		now, admitted := int64(1), int64(0)
		for _, step := range rapid.SliceOfN(rapid.Int64Range(0, 1<<20), 1, 50).Draw(t, "steps") {
			now += step * 1000
			size := rapid.Int64Range(1, 2*burst).Draw(t, "size")
			if ok, wait := b.Admit(now, size); ok {
				admitted += size
			} else if wait <= 0 {
				t.Fatalf("refused with no time to wait")
			} else if at := b.ReadyAt(now, size); at != now+wait {
				t.Fatalf("refused with a wait of %d, ready at %d", wait, at-now)
			}
			limit := float64(burst) + float64(now-1)*float64(rate)/1e9 + float64(2*burst)
			if float64(admitted) > limit {
				t.Fatalf("admitted %d by %dns, limit %.0f", admitted, now, limit)
			}
		}
	})
}
