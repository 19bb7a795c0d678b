package access

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func TestRolesIncludeWeakerOnes(t *testing.T) {
	for _, tc := range []struct {
		have []Role
		need Role
		want bool
	}{
		{nil, RoleRead, false},
		{[]Role{RoleRead}, RoleRead, true},
		{[]Role{RoleRead}, RoleWrite, false},
		{[]Role{RoleWrite}, RoleRead, true},
		{[]Role{RoleWrite}, RoleAdmin, false},
		{[]Role{RoleAdmin}, RoleWrite, true},
	} {
		require.Equal(t, tc.want, User{Roles: tc.have}.Has(tc.need), "%v needs %v", tc.have, tc.need)
	}
}

func TestRequired(t *testing.T) {
	require.Equal(t, RoleRead, Required(wire.TypeGet))
	require.Equal(t, RoleRead, Required(wire.TypeRingState), "a routing client needs the ring")
	require.Equal(t, RoleWrite, Required(wire.TypePut))
	require.Equal(t, RoleWrite, Required(wire.TypeDelete))
	require.Equal(t, RoleRead, Required(wire.TypeCounterGet))
	require.Equal(t, RoleWrite, Required(wire.TypeCounterIncr))
	require.Equal(t, RoleRead, Required(wire.TypeSetGet))
	require.Equal(t, RoleWrite, Required(wire.TypeSetUpdate))
	for _, tp := range []wire.Type{wire.TypeRemoveMember, wire.TypeLeave, wire.TypeKeyring, wire.TypeDebugReplicas, wire.TypeUsers, wire.Type(999)} {
		require.Equal(t, RoleAdmin, Required(tp), "%v", tp)
	}
}

func TestUserRecordRoundTripAndRejects(t *testing.T) {
	_, hash, err := NewToken(rand.Reader)
	require.NoError(t, err)
	u := User{Name: "alice", Roles: []Role{RoleAdmin, RoleRead, RoleAdmin}, TokenHash: hash}
	back, err := DecodeUser("alice", u.Encode())
	require.NoError(t, err)
	require.Equal(t, User{Name: "alice", Roles: []Role{RoleRead, RoleAdmin}, TokenHash: hash}, back)

	bad := func(w wireUser) []byte {
		b, err := msgpack.Marshal(&w)
		require.NoError(t, err)
		return b
	}
	for name, b := range map[string][]byte{
		"garbage":      []byte("\xdb\xff\xff\xff\xffx"),
		"unknown role": bad(wireUser{Roles: []string{"god"}}),
		"short hash":   bad(wireUser{Roles: []string{"read"}, Hash: []byte("short")}),
		"many roles":   bad(wireUser{Roles: []string{"read", "read", "read", "read"}}),
	} {
		_, err := DecodeUser("alice", b)
		require.Error(t, err, name)
	}
}

func TestTokens(t *testing.T) {
	tok, hash, err := NewToken(bytes.NewReader(make([]byte, 32)))
	require.NoError(t, err)
	require.Equal(t, "cairn_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", tok)
	require.True(t, TokenMatches(HashToken([]byte(tok)), hash))
	require.False(t, TokenMatches(HashToken([]byte(tok+"x")), hash))
	require.False(t, TokenMatches(HashToken([]byte(tok)), nil), "a user without a token matches none")
	_, _, err = NewToken(bytes.NewReader(make([]byte, 5)))
	require.Error(t, err, "too little randomness is an error, not a weak token")
}

func TestCheckNameAndParseRole(t *testing.T) {
	require.NoError(t, CheckName("alice.b-2"))
	for _, n := range []string{"", "-a", "a b", "a/b", string(make([]byte, 129))} {
		require.Error(t, CheckName(n), "%q", n)
	}
	_, err := ParseRole("Admin")
	require.Error(t, err)
}
