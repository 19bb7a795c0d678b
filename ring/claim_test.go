package ring

import (
	"math/big"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestPropertyClaimMatchesDefinition checks the deferred-acceptance claim
// against the rule as claim.go states it: sort every pair, take greedily.
// Ranks are computed here with a plain sort, so the bucket sort in
// memberRanks is checked too.
func TestPropertyClaimMatchesDefinition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		q := partitionsGen(9).Draw(t, "Q")
		members := memberNames(1, 24).Draw(t, "members")
		sorted := sortedCopy(members)
		got := claim(q, sorted)
		want := greedyClaim(q, sorted, rankScore(q, sorted), memberCaps(q, sorted))
		if !slices.Equal(got, want) {
			t.Fatalf("claim and the greedy definition disagree:\n got %v\nwant %v", got, want)
		}
	})
}

func TestMemberRanksIsAPermutation(t *testing.T) {
	for _, q := range []int{1, 2, 1024, MaxPartitions} {
		ranks := memberRanks(memberSeed("n1"), newRankScratch(q))
		seen := make([]bool, q)
		for p, r := range ranks {
			if int(r) >= q || seen[r] {
				t.Fatalf("Q=%d: rank %d of partition %d repeats or is out of range", q, r, p)
			}
			seen[r] = true
		}
	}
}

// TestCapacities checks the integer arithmetic of the caps against exact
// rationals, and that the caps always hold every partition and never exceed
// the DESIGN bound unless an even share itself does (Q/S < 4, where
// ceil(Q/S) > 1.25 x Q/S is unavoidable).
func TestCapacities(t *testing.T) {
	for q := 1; q <= MaxPartitions; q *= 4 {
		for _, s := range []int{1, 2, 3, 5, 16, 63, 64, 65, 100, 1000, MaxMembers} {
			sorted := sortedCopy(randomNames(s))
			caps := memberCaps(q, sorted)
			total := 0
			for m, c := range caps {
				total += c
				u := new(big.Rat).SetFrac64(int64(capacityFraction(memberSeed(sorted[m]))), 1<<32)
				exact := new(big.Rat).Sub(big.NewRat(int64(5*q), int64(4*s)), u)
				floor := new(big.Int).Quo(exact.Num(), exact.Denom()) // truncates toward zero
				want := max(int64((q+s-1)/s), floor.Int64())
				if int64(c) != want {
					t.Fatalf("Q=%d S=%d %s: cap %d, want %d", q, s, sorted[m], c, want)
				}
				if c > boundCap(q, s) {
					t.Fatalf("Q=%d S=%d: cap %d above max(ceil(Q/S), floor(1.25 Q/S)) = %d", q, s, c, boundCap(q, s))
				}
			}
			if total < q {
				t.Fatalf("Q=%d S=%d: caps hold %d < Q", q, s, total)
			}
		}
	}
}

func TestClaimEdgeShapes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		partitions int
		members    int
	}{
		{"one partition, one member", 1, 1},
		{"one partition, many members", 1, 5},
		{"fewer partitions than members", 4, 9},
		{"one member owns everything", 64, 1},
		{"two members", 1024, 2},
		{"largest Q", MaxPartitions, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names := sequentialNames(tc.members)
			r := mustNew(t, tc.partitions, names)
			owning := 0
			for _, m := range names {
				n := len(r.Owned(m))
				if limit := boundCap(tc.partitions, tc.members); n > limit {
					t.Fatalf("%s owns %d, over capacity %d", m, n, limit)
				}
				if n > 0 {
					owning++
				}
			}
			if want := min(tc.partitions, tc.members); owning != want {
				t.Fatalf("%d members own partitions, want %d", owning, want)
			}
		})
	}
}
