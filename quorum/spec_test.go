package quorum

import (
	"errors"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/stretchr/testify/require"
)

func TestSpecValidate(t *testing.T) {
	defaults := Spec{N: 3, R: 2, W: 2, NotFoundOK: true}
	with := func(change func(*Spec)) Spec {
		s := defaults
		change(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		op   string
		spec Spec
		want string // empty: valid
	}{
		{"get defaults", "get", defaults, ""},
		{"put defaults", "put", defaults, ""},
		{"delete defaults", "delete", defaults, ""},
		{"all of n", "get", with(func(s *Spec) { s.R, s.PR = 3, 3 }), ""},
		{"write all of n", "put", with(func(s *Spec) { s.W, s.PW, s.DW = 3, 3, 3 }), ""},
		{"pr above r only waits longer", "get", with(func(s *Spec) { s.R, s.PR = 1, 3 }), ""},
		{"dw above w only waits longer", "put", with(func(s *Spec) { s.W, s.DW = 1, 2 }), ""},
		{"r exceeds n", "get", with(func(s *Spec) { s.R = 4 }), "r 4 exceeds n 3"},
		{"r zero", "get", with(func(s *Spec) { s.R = 0 }), "r 0 must be at least 1"},
		{"pr exceeds n", "get", with(func(s *Spec) { s.PR = 4 }), "pr 4 exceeds n 3"},
		{"pr negative", "get", with(func(s *Spec) { s.PR = -1 }), "pr -1 must be at least 0"},
		{"w exceeds n", "put", with(func(s *Spec) { s.W = 5 }), "w 5 exceeds n 3"},
		{"w zero", "delete", with(func(s *Spec) { s.W = 0 }), "w 0 must be at least 1"},
		{"pw exceeds n", "put", with(func(s *Spec) { s.PW = 4 }), "pw 4 exceeds n 3"},
		{"dw exceeds n", "delete", with(func(s *Spec) { s.DW = 4 }), "dw 4 exceeds n 3"},
		{"dw negative", "put", with(func(s *Spec) { s.DW = -2 }), "dw -2 must be at least 0"},
		{"n zero", "get", with(func(s *Spec) { s.N = 0 }), "n 0 must be at least 1"},
		{"every problem is reported", "put", with(func(s *Spec) { s.W, s.PW, s.DW = 0, 4, 9 }),
			"w 0 must be at least 1; pw 4 exceeds n 3; dw 9 exceeds n 3"},
		{"get ignores write fields", "get", with(func(s *Spec) { s.W, s.PW, s.DW = 9, 9, -1 }), ""},
		{"put ignores read fields", "put", with(func(s *Spec) { s.R, s.PR = 0, 9 }), ""},
		{"unknown op", "scan", defaults, `unknown operation "scan"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate(tc.op)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, errors.Is(err, cairn.ErrInvalidArgument), "%v does not wrap ErrInvalidArgument", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
