package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Actors retired by an unclean start or a dropped partition are
// remembered, across clean and unclean reopens, for the partition they
// minted into; the current actors never are.
func TestRetiredActorsAreRecorded(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testOptions(dir))
	require.NoError(t, err)
	first, err := s.Actor(7)
	require.NoError(t, err)
	other, err := s.Actor(9)
	require.NoError(t, err)
	require.Empty(t, s.RetiredActors(7))
	require.False(t, s.IsRetired(first))
	require.NoError(t, s.db.Close(), "skip Store.Close: the running marker stays")

	s = openAt(t, dir)
	require.Equal(t, []string{first}, s.RetiredActors(7))
	require.Equal(t, []string{other}, s.RetiredActors(9))
	second, err := s.Actor(7)
	require.NoError(t, err)
	require.True(t, s.IsRetired(first))
	require.False(t, s.IsRetired(second))

	require.NoError(t, s.DropPartition(7))
	require.ElementsMatch(t, []string{first, second}, s.RetiredActors(7))
	require.True(t, s.IsRetired(second))
	require.NoError(t, s.Close())

	s, err = Open(testOptions(dir))
	require.NoError(t, err)
	defer s.Close()
	require.ElementsMatch(t, []string{first, second}, s.RetiredActors(7))

	require.NoError(t, s.RetireActors(3, []string{"n2.00000000000000aa", ""}))
	require.True(t, s.IsRetired("n2.00000000000000aa"))
	require.False(t, s.IsRetired(""))
	require.Equal(t, []string{"n2.00000000000000aa"}, s.RetiredActors(3))
}
