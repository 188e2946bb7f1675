package projections

import (
	"maps"
	"testing"

	"github.com/gantryhq/gantry/eventstore"
)

func TestCheckpointNoticeRoundTrip(t *testing.T) {
	at := map[string]eventstore.Cursor{"runs": {Tx: 812, Position: 40}, "stacks": {}, "apikeys": {Tx: 9223372036854775807, Position: 1}}
	payload := checkpointNotice(at)
	if want := "apikeys=9223372036854775807/1,runs=812/40,stacks=0/0"; payload != want {
		t.Errorf("notice = %q, want %q", payload, want)
	}
	got, ok := parseCheckpointNotice(payload)
	if !ok || !maps.Equal(got, at) {
		t.Errorf("parse(%q) = %v, %v; want %v", payload, got, ok, at)
	}
	// Payloads of another version, or none, are not read as checkpoints.
	for _, bad := range []string{"", "runs", "runs,stacks", "runs=1", "runs=1/x", "=1/2", "runs=1/2,", "runs=a/2"} {
		if got, ok := parseCheckpointNotice(bad); ok {
			t.Errorf("parse(%q) = %v, want not ok", bad, got)
		}
	}
}
