package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	rundomain "github.com/gantryhq/gantry/domain/run"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/seal"
)

// outputsRepo is a repository whose configuration has a plain and a
// sensitive output; it returns its file:// URL.
func outputsRepo(t *testing.T) string {
	t.Helper()
	return newTestRepo(t, `
resource "terraform_data" "demo" {
  input = "hello"
}

output "greeting" {
  value = terraform_data.demo.output
}

output "db_password" {
  value     = "correct-horse-battery"
  sensitive = true
}
`).url()
}

// TestRunOutputsRecordedOnTheRun: a launcher with
// GANTRY_SENSITIVE_OUTPUT_UPLOAD_ENABLED records a run's outputs after its
// apply: the plain ones in the API and `gantry run show`, the sensitive one
// masked there and kept only sealed to the server's outputs key, never in
// the clear in an event.
func TestRunOutputsRecordedOnTheRun(t *testing.T) {
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "outputs", 1, "GANTRY_SENSITIVE_OUTPUT_UPLOAD_ENABLED=true", "GANTRY_DEBUG=true")
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "outs", RepositoryUrl: outputsRepo(t), WorkerPoolId: pool.id, ManagedState: true, Autodeploy: true})
	id := c.trigger(t, "outs", gantryv1.RunType_RUN_TYPE_TRACKED)
	r := c.waitRunState(t, id, gantryv1.RunState_RUN_STATE_FINISHED)

	outs := map[string]*gantryv1.RunOutput{}
	for _, o := range r.GetOutputs() {
		outs[o.GetName()] = o
	}
	if g := outs["greeting"]; g.GetValue() != `"hello"` || g.GetType() != `"string"` || g.GetSensitive() {
		t.Errorf("greeting: %v", g)
	}
	if p := outs["db_password"]; !p.GetSensitive() || p.GetValue() != "" || !p.GetValueStored() {
		t.Errorf("db_password: %v", p)
	}
	show := srv.mustCLI(t, "run", "show", id)
	if !regexpMatch(`(?m)^greeting\s+"hello"$`, show) || !regexpMatch(`(?m)^db_password\s+\(sensitive, stored sealed\)$`, show) {
		t.Errorf("run show:\n%s", show)
	}
	if strings.Contains(srv.eventsText(t), "correct-horse-battery") || strings.Contains(show, "correct-horse-battery") {
		t.Fatal("the sensitive value is in the clear")
	}
	// With managed state the worker reads the outputs from the state the
	// apply stored: no `terraform output` process.
	var applying string
	for name, text := range srv.storedLogs(t, id) {
		if strings.Contains(name, "APPLYING") {
			applying = text
		}
	}
	if !strings.Contains(applying, "Reading the run's outputs from the stored state") || strings.Contains(applying, "output -json") ||
		strings.Contains(applying, "correct-horse-battery") {
		t.Errorf("the APPLYING log:\n%s", applying)
	}

	// The event keeps the value sealed to the server's outputs key.
	events, err := srv.store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keyring.LoadOrCreateOutputsKey(context.Background(), keyring.NewKeyStore(srv.pool, srv.keys.keeper))
	if err != nil {
		t.Fatal(err)
	}
	var opened string
	for _, e := range events {
		if e.Type != (rundomain.RunOutputsRecorded{}).EventType() {
			continue
		}
		var rec rundomain.RunOutputsRecorded
		if err := json.Unmarshal(e.Payload, &rec); err != nil {
			t.Fatal(err)
		}
		for _, o := range rec.Outputs {
			if o.Name != "db_password" {
				continue
			}
			plain, err := seal.Open(key, o.Sealed)
			if err != nil {
				t.Fatal(err)
			}
			opened = string(plain)
		}
	}
	if want, _ := json.Marshal("correct-horse-battery"); opened != string(want) {
		t.Errorf("the sealed value opens to %q, want %s", opened, want)
	}
}
