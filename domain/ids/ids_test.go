package ids

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain"
)

func TestValidate(t *testing.T) {
	valid := []struct {
		p  Prefix
		id string
	}{
		{Run, "run_01JABCDEF"}, {Stack, "stk_x"}, {WorkerPool, PublicPool}, {Worker, "wkr_a-b_c"},
		{Run, "run_" + strings.Repeat("a", MaxLength-4)},
	}
	for _, tc := range valid {
		if err := tc.p.Validate("id", tc.id); err != nil {
			t.Errorf("%s %q: %v", tc.p, tc.id, err)
		}
	}
	invalid := []struct {
		p  Prefix
		id string
	}{
		{Run, ""}, {Run, "run_"}, {Run, "run"}, {Run, "stk_01"}, {Run, "RUN_01"}, {Stack, "stk-01"},
		{WorkerPool, "wp_a.b"}, {Worker, "wkr_a b"}, {Worker, "wkr_é"}, {Run, "run_" + strings.Repeat("a", MaxLength-3)},
		{Worker, "wp_01"}, // a pool id where a worker id belongs
	}
	for _, tc := range invalid {
		err := tc.p.Validate("the_field", tc.id)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != "the_field" || !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s %q: got %v, want a ValidationError naming the_field", tc.p, tc.id, err)
		}
	}
}
