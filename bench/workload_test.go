package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mix
		err  string
	}{
		{in: "read=50,update=50", want: Mix{Read: 50, Update: 50}},
		{in: " read = 95 , insert=5 ", want: Mix{Read: 95, Insert: 5}},
		{in: "rmw=1", want: Mix{RMW: 1}},
		{in: "read=50,update=0,insert=0,rmw=0", want: Mix{Read: 50}},
		{in: "", err: "positive weight"},
		{in: "read=0", err: "positive weight"},
		{in: "read", err: "not op=weight"},
		{in: "scan=5", err: "unknown operation"},
		{in: "read=-1", err: "integer from 0"},
		{in: "read=x", err: "integer from 0"},
		{in: "read=1,read=2", err: "given twice"},
	} {
		got, err := ParseMix(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "input %q", tc.in)
			continue
		}
		require.NoError(t, err, "input %q", tc.in)
		require.Equal(t, tc.want, got)
		again, err := ParseMix(got.String())
		require.NoError(t, err)
		require.Equal(t, got, again, "String round-trips")
	}
}

func TestMixPickProportions(t *testing.T) {
	m := Mix{Read: 70, Update: 20, RMW: 10}
	r := seeded(9)
	var counts [numOps]int
	for range draws {
		counts[m.pick(r)]++
	}
	require.Zero(t, counts[Insert])
	for _, op := range m.Ops() {
		want := float64(m[op]) / 100 * draws
		require.InDelta(t, want, float64(counts[op]), 0.05*want, "%s", op)
	}
}

func TestWorkloads(t *testing.T) {
	for name, w := range Workloads {
		got, err := LookupWorkload(name)
		require.NoError(t, err)
		require.Equal(t, w, got)
		require.Positive(t, w.Mix.total())
	}
	a, err := LookupWorkload("A")
	require.NoError(t, err)
	require.Equal(t, Mix{Read: 50, Update: 50}, a.Mix)
	d, _ := LookupWorkload("d")
	require.Equal(t, Latest, d.Distribution)
	_, err = LookupWorkload("e")
	require.ErrorContains(t, err, "want a, b, c, d or f")
	_, err = ParseDistribution("hotspot")
	require.Error(t, err)
}

func TestConfigValidateReportsEverything(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.Mix = Mix{}
	c.Records = 0
	c.Concurrency = 0
	c.Duration = 0
	c.Rate = -1
	c.Bucket = ""
	err := c.Validate()
	for _, want := range []string{"mix", "records", "concurrency", "duration", "rate", "bucket"} {
		require.ErrorContains(t, err, want)
	}
}
