package buckets

import (
	"time"

	"testing"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

func TestApplyFixesNAndDatatypeAtCreation(t *testing.T) {
	p, err := Apply(Defaults(), Change{N: ptr(5), R: ptr(wire.Quorum(3)), W: ptr(wire.QuorumMajority)}, true)
	require.NoError(t, err)
	require.Equal(t, 5, p.N)
	require.Equal(t, wire.Quorum(3), p.R)
	require.Equal(t, wire.QuorumDefault, p.PR)

	_, err = Apply(p, Change{N: ptr(3)}, false)
	require.ErrorContains(t, err, "n is fixed when a bucket is created (it has n=5)")
	same, err := Apply(p, Change{N: ptr(5), R: ptr(wire.Quorum(2))}, false)
	require.NoError(t, err, "naming the n it has is no change")
	require.Equal(t, wire.Quorum(2), same.R)
	_, err = Apply(p, Change{Datatype: ptr("counter")}, false)
	require.ErrorContains(t, err, "datatype is fixed")

	c, err := Apply(Defaults(), Change{Datatype: ptr("counter")}, true)
	require.NoError(t, err)
	require.Equal(t, dvv.CounterMode, c.Mode())
	_, err = Apply(c, Change{Datatype: ptr("")}, false)
	require.ErrorContains(t, err, "datatype is fixed", "a counter cannot turn back into values either")
	_, err = Apply(c, Change{Conflict: ptr("lww")}, false)
	require.ErrorContains(t, err, "conflict lww does not apply")
	s, err := Apply(Defaults(), Change{Datatype: ptr("set")}, true)
	require.NoError(t, err)
	require.Equal(t, dvv.SetMode, s.Mode())
}

func TestValidateRefusesWhatCannotBeHonoured(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{N: ptr(-1)}, "n -1"},
		{Change{N: ptr(3), R: ptr(wire.Quorum(4))}, "r 4: more than the bucket's n=3"},
		{Change{W: ptr(wire.Quorum(-9))}, "not a quorum"},
		{Change{Conflict: ptr("newest")}, "want siblings or lww"},
		{Change{Datatype: ptr("map")}, "want counter or set"},
		{Change{SiblingLimit: ptr(MaxSiblingLimit + 1)}, "sibling_limit"},
		{Change{DeleteGrace: ptr("500ms")}, "at least 1s"},
		{Change{DeleteGrace: ptr("soon")}, "want a duration or keep"},
	} {
		_, err := Apply(Defaults(), tc.c, true)
		require.ErrorContains(t, err, tc.want)
	}
	_, err := Apply(Defaults(), Change{Conflict: ptr("siblings"), DeleteGrace: ptr("keep"), NotFoundOK: ptr(false)}, true)
	require.NoError(t, err)
}

func TestRecordRoundTripAndHostileRecords(t *testing.T) {
	p, err := Apply(Defaults(), Change{N: ptr(5), DW: ptr(wire.QuorumAll), NotFoundOK: ptr(false), SiblingLimit: ptr(10)}, true)
	require.NoError(t, err)
	back, err := Decode(Encode(p))
	require.NoError(t, err)
	require.Equal(t, p, back)

	_, err = Decode([]byte{0xc1})
	require.Error(t, err)
	_, err = Decode(make([]byte, maxRecordLen+1))
	require.ErrorContains(t, err, "more than")
	bad := p
	bad.Datatype = "map"
	_, err = Decode(Encode(bad))
	require.ErrorContains(t, err, "want counter or set", "a record is validated, not trusted")
}

// Last-write-wins is accepted at creation and, unlike n and the datatype,
// may be turned on and off later.
func TestConflictModeChanges(t *testing.T) {
	p, err := Apply(Defaults(), Change{Conflict: ptr(ConflictLWW)}, true)
	require.NoError(t, err)
	require.Equal(t, dvv.LWW, p.Mode())
	back, err := Decode(Encode(p))
	require.NoError(t, err)
	require.Equal(t, dvv.LWW, back.Mode())
	p, err = Apply(p, Change{Conflict: ptr(ConflictSiblings)}, false)
	require.NoError(t, err)
	require.Equal(t, dvv.Siblings, p.Mode())
	p, err = Apply(p, Change{Conflict: ptr(ConflictLWW)}, false)
	require.NoError(t, err)
	require.Equal(t, dvv.LWW, p.Mode())
	require.Equal(t, dvv.Siblings, Defaults().Mode(), "a bucket never configured keeps siblings")
}

func TestGrace(t *testing.T) {
	p, err := Apply(Defaults(), Change{DeleteGrace: ptr("90s")}, true)
	require.NoError(t, err)
	d, ok := p.Grace()
	require.True(t, ok)
	require.Equal(t, 90*time.Second, d)
	for _, keep := range []string{"", GraceKeep} {
		_, ok := Props{DeleteGrace: keep}.Grace()
		require.False(t, ok, "%q keeps tombstones", keep)
	}
}
