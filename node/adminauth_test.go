package node

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokenOfAuthorizationHeader(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		header, want string
		ok           bool
	}{
		{"Bearer cairn_x", "cairn_x", true},
		{"bearer  cairn_x ", "cairn_x", true},
		{basic("anyone:cairn_x"), "cairn_x", true},
		{basic(":cairn_x"), "cairn_x", true},
		{basic("user:pa:ss"), "pa:ss", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{basic("nopassword"), "", false},
		{basic("user:"), "", false},
		{"Basic !!!", "", false},
		{"Digest cairn_x", "", false},
	} {
		got, ok := tokenOf(tc.header)
		require.Equal(t, tc.ok, ok, "%q", tc.header)
		require.Equal(t, tc.want, got, "%q", tc.header)
	}
}
