package statebackend_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// TestWorkerStatePathIsTheHandlers: workers point terraform at the state
// through an override they build on their own (tfbackend, which imports
// nothing of the server); its address must be where this handler serves the
// stack's state.
func TestWorkerStatePathIsTheHandlers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, statebackend.Config{})
	stk := e.createStack(true)
	address := e.srv.URL + tfbackend.StatePath(stk)
	if address != e.stateURL(stk) {
		t.Fatalf("workers address the state at %s, the handler serves it at %s", address, e.stateURL(stk))
	}
	override := string(tfbackend.OverrideFile(e.srv.URL+"/", stk, tfbackend.Credentials{}))
	for _, setting := range []string{"address", "lock_address", "unlock_address"} {
		if !strings.Contains(override, setting+strings.Repeat(" ", len("unlock_address")-len(setting))+` = "`+address+`"`) {
			t.Errorf("the override's %s is not %s:\n%s", setting, address, override)
		}
	}
	creds := e.mint(stk, e.newRun(stk, run.Tracked, run.Initializing), run.PhaseInitializing)
	if status, _, _ := e.do(http.MethodGet, address, &creds, nil, nil); status != http.StatusNoContent {
		t.Fatalf("GET %s: status %d, want 204 (a stack without state)", address, status)
	}
}
