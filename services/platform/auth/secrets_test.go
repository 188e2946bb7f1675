package auth_test

import (
	"testing"

	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestCanReadSecrets(t *testing.T) {
	for _, tc := range []struct {
		p    auth.Principal
		want bool
	}{
		{auth.Principal{Subject: "ada", Role: auth.RoleAdmin}, true},
		{auth.Principal{Subject: "bob", Role: auth.RoleUser}, false},
		{auth.Principal{Subject: "eve"}, false},
	} {
		if got := auth.CanReadSecrets(tc.p); got != tc.want {
			t.Errorf("CanReadSecrets(%+v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}
