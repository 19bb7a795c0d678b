package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScheduleIntendedTimes(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// 1000 ops/s over 4 workers: each sends every 4ms, staggered by 1ms.
	for w := range 4 {
		s := NewSchedule(start, 1000, 4, w)
		for i := range int64(100) {
			want := start.Add(time.Duration(w)*time.Millisecond + time.Duration(i)*4*time.Millisecond)
			require.Equal(t, want, s.At(i), "worker %d request %d", w, i)
		}
	}
	// Together the workers' schedules are one evenly spaced stream.
	seen := map[time.Time]bool{}
	for w := range 4 {
		s := NewSchedule(start, 1000, 4, w)
		for i := range int64(250) {
			seen[s.At(i)] = true
		}
	}
	for k := range 1000 {
		require.True(t, seen[start.Add(time.Duration(k)*time.Millisecond)], "slot %d", k)
	}
}

func TestScheduleDoesNotDrift(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// 3 ops/s: an interval of 333.33...ms that a time.Duration cannot hold.
	s := NewSchedule(start, 3, 1, 0)
	require.Equal(t, start.Add(time.Hour), s.At(3*3600))
}

func TestScheduleBefore(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSchedule(start, 100, 2, 1) // every 20ms from 10ms
	for _, tc := range []struct {
		at   time.Duration
		want int64
	}{
		{0, 0}, {10 * time.Millisecond, 0}, {10*time.Millisecond + 1, 1},
		{30 * time.Millisecond, 1}, {31 * time.Millisecond, 2}, {time.Second, 50},
	} {
		require.Equal(t, tc.want, s.Before(start.Add(tc.at)), "before %v", tc.at)
	}
	s3 := NewSchedule(start, 3, 1, 0)
	for i := range int64(1000) {
		require.Equal(t, i, s3.Before(s3.At(i)))
		require.Equal(t, i+1, s3.Before(s3.At(i).Add(1)))
	}
}
