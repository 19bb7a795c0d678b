package client

import (
	"slices"
	"testing"

	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/ring"
	"github.com/stretchr/testify/require"
)

func planMembers(dead ...string) []wire.MemberInfo {
	var ms []wire.MemberInfo
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		ms = append(ms, wire.MemberInfo{Name: n, Addr: n + ":7101", Status: "active", Alive: !slices.Contains(dead, n)})
	}
	return ms
}

// A replacement plan moves exactly the replaced member's partitions, all
// to the newcomer, each from a live replica.
func TestPlanReplaceMovesOnlyTheReplacedMembersPartitions(t *testing.T) {
	p, err := PlanChange(planMembers("n4"), 256, 3, Change{Op: "replace", Node: "n4", New: "n5"})
	require.NoError(t, err)
	before, err := ring.New(256, []string{"n1", "n2", "n3", "n4"})
	require.NoError(t, err)
	held := 0
	for part := range uint32(256) {
		prefs, _ := before.Preference(part, 3)
		if slices.Contains(prefs, "n4") {
			held++
		}
	}
	require.Equal(t, held, p.Moving)
	require.Len(t, p.Moves, held)
	for _, m := range p.Moves {
		require.Equal(t, "n5", m.To)
		require.NotEmpty(t, m.From)
		require.NotEqual(t, "n4", m.From, "a dead member streams nothing")
	}
	require.Equal(t, p.OwnedBefore["n4"], p.OwnedAfter["n5"])
	for _, m := range []string{"n1", "n2", "n3"} {
		require.Equal(t, p.OwnedBefore[m], p.OwnedAfter[m])
	}
	require.Equal(t, []string{"n1", "n2", "n3", "n5"}, p.After)
}

// A join moves about a fifth of the copies to the newcomer; a leave moves
// the leaver's away from it.
func TestPlanJoinAndLeave(t *testing.T) {
	p, err := PlanChange(planMembers(), 256, 3, Change{Op: "join", Node: "n5"})
	require.NoError(t, err)
	require.Equal(t, []string{"n1", "n2", "n3", "n4", "n5"}, p.After)
	require.Positive(t, p.Moving)
	got := 0
	for _, m := range p.Moves {
		if m.To == "n5" {
			got++
		}
	}
	require.Positive(t, got)
	require.Positive(t, p.OwnedAfter["n5"])

	p, err = PlanChange(planMembers(), 256, 3, Change{Op: "leave", Node: "n2"})
	require.NoError(t, err)
	require.Equal(t, []string{"n1", "n3", "n4"}, p.After)
	for _, m := range p.Moves {
		require.NotEqual(t, "n2", m.To)
	}
}

// A plan the nodes would refuse is refused, with the reason.
func TestPlanRefusesWhatTheNodesWould(t *testing.T) {
	ms := append(planMembers(), wire.MemberInfo{Name: "n9", Status: "removed"})
	for _, tc := range []struct {
		ch   Change
		want string
	}{
		{Change{Op: "join", Node: "n1"}, "already a member"},
		{Change{Op: "leave", Node: "n9"}, "owns no partitions (removed)"},
		{Change{Op: "remove", Node: "n7"}, "owns no partitions (not a member)"},
		{Change{Op: "replace", Node: "n4", New: "n1"}, "n1 is active"},
		{Change{Op: "replace", Node: "n9", New: "n5"}, "only an active member can be replaced"},
		{Change{Op: "replace", Node: "n4"}, "name the node taking its place"},
		{Change{Op: "grow", Node: "n4"}, "unknown change"},
	} {
		_, err := PlanChange(ms, 256, 3, tc.ch)
		require.ErrorContains(t, err, tc.want, "%s", tc.ch)
	}
	_, err := PlanChange([]wire.MemberInfo{{Name: "n1", Status: "active", Alive: true}}, 256, 3, Change{Op: "leave", Node: "n1"})
	require.ErrorContains(t, err, "last member")
}
