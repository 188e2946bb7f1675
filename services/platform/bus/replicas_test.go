package bus

import (
	"strings"
	"testing"
)

func TestParseStreamReplicas(t *testing.T) {
	for in, want := range map[string]int{"": 1, "1": 1, " 3 ": 3, "5": 5} {
		if got, err := ParseStreamReplicas(in); err != nil || got != want {
			t.Errorf("ParseStreamReplicas(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "6", "three", "2.5"} {
		_, err := ParseStreamReplicas(in)
		if err == nil || !strings.Contains(err.Error(), EnvStreamReplicas+"=") {
			t.Errorf("ParseStreamReplicas(%q): %v, want an error naming %s", in, err, EnvStreamReplicas)
		}
	}
}
