package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestEveryProcedureNeedsAValidToken(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "guarded", "--repo", repo)
	for name, token := range map[string]string{
		"missing":  "",
		"garbage":  "not-a-jwt",
		"tampered": srv.adminToken(t) + "x",
	} {
		t.Run(name, func(t *testing.T) {
			c := srv.as(token)
			before := srv.eventCount(t)
			calls := map[string]func(context.Context) error{
				"CreateStack": func(ctx context.Context) error {
					_, err := c.stacks.CreateStack(ctx, connect.NewRequest(&gantryv1.CreateStackRequest{Name: "x", RepositoryUrl: repo}))
					return err
				},
				"GetStack": func(ctx context.Context) error {
					_, err := c.stacks.GetStack(ctx, connect.NewRequest(&gantryv1.GetStackRequest{Stack: "guarded"}))
					return err
				},
				"ListStacks": func(ctx context.Context) error {
					_, err := c.stacks.ListStacks(ctx, connect.NewRequest(&gantryv1.ListStacksRequest{}))
					return err
				},
				"TriggerRun": func(ctx context.Context) error {
					_, err := c.runs.TriggerRun(ctx, connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "guarded"}))
					return err
				},
				"ListRuns": func(ctx context.Context) error {
					_, err := c.runs.ListRuns(ctx, connect.NewRequest(&gantryv1.ListRunsRequest{Stack: "guarded"}))
					return err
				},
				"ListWorkerPools": func(ctx context.Context) error {
					_, err := c.pools.ListWorkerPools(ctx, connect.NewRequest(&gantryv1.ListWorkerPoolsRequest{}))
					return err
				},
				"CreateWorkerPool": func(ctx context.Context) error {
					_, err := c.pools.CreateWorkerPool(ctx, connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "p", Csr: "x"}))
					return err
				},
				"EventService.Stream": func(ctx context.Context) error {
					stream, err := c.events.Stream(ctx, connect.NewRequest(&gantryv1.StreamRequest{}))
					if err != nil {
						return err
					}
					defer stream.Close()
					for stream.Receive() {
						t.Errorf("the event stream sent %v without a valid token", stream.Msg().GetEvent())
					}
					return stream.Err()
				},
			}
			for proc, call := range calls {
				err := call(testCtx(t))
				var cerr *connect.Error
				if connect.CodeOf(err) != connect.CodeUnauthenticated || !errors.As(err, &cerr) || cerr.Message() != "missing or invalid token" {
					t.Errorf("%s: %v, want Unauthenticated \"missing or invalid token\" and nothing more", proc, err)
				}
			}
			if after := srv.eventCount(t); after != before {
				t.Errorf("unauthenticated calls wrote %d events", after-before)
			}
		})
	}
}

func TestEventsNameTheCallerAsActor(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	alice := srv.token(t, "alice", apikey.RoleAdmin)
	before := srv.eventCount(t)
	if _, err := srv.cliAs(t, alice, "stack", "create", "audited", "--repo", repo); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.cliAs(t, alice, "stack", "env", "set", "audited", "TF_LOG", "info"); err != nil {
		t.Fatal(err)
	}
	out, err := srv.cliAs(t, alice, "-o", "json", "run", "trigger", "audited")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.cliAs(t, alice, "run", "cancel", r.ID, "--note", "changed my mind"); err != nil {
		t.Fatal(err)
	}

	// gantry events, as the admin, shows who did what.
	lines := strings.Split(strings.TrimSpace(srv.mustCLI(t, "events", "--from", "1")), "\n")
	if len(lines) <= before {
		t.Fatalf("gantry events printed %d lines, want more than %d", len(lines), before)
	}
	correlations := map[string]int{}
	for _, line := range lines[before:] {
		var e struct {
			Type     string `json:"type"`
			Metadata struct {
				Actor         string `json:"actor"`
				CorrelationID string `json:"correlation_id"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Metadata.Actor != "user:alice" || e.Metadata.CorrelationID == "" {
			t.Errorf("event %s: actor %q correlation %q, want user:alice and an id", e.Type, e.Metadata.Actor, e.Metadata.CorrelationID)
		}
		correlations[e.Metadata.CorrelationID]++
	}
	// Four calls, four correlation ids; the calls appending to several
	// streams share theirs across those events.
	if len(correlations) != 4 {
		t.Errorf("%d correlation ids for 4 calls: %v", len(correlations), correlations)
	}
}

func TestSecretValuesNeverComeBack(t *testing.T) {
	srv := startServer(t)
	repo, _ := gitRepo(t)
	srv.mustCLI(t, "stack", "create", "secretive", "--repo", repo)
	const plaintext = "hunter2-very-secret-value"
	if _, err := srv.cliEnv(t, map[string]string{auth.ConfigDirEnv: srv.configDir}, "stack", "env", "set", "secretive", "wo_DB_PASSWORD", plaintext, "--secret"); err != nil {
		t.Fatal(err)
	}
	srv.mustCLI(t, "stack", "env", "set", "secretive", "TF_LOG", "debug")

	admin := srv.as(srv.adminToken(t))
	resp, err := admin.stacks.SetStackEnv(testCtx(t), connect.NewRequest(&gantryv1.SetStackEnvRequest{Stack: "secretive", Key: "ro_TOKEN", Value: plaintext, Secret: true}))
	if err != nil {
		t.Fatal(err)
	}
	if v := resp.Msg.GetEnv(); v.GetValue() != "" || !v.GetSecret() || v.GetScope() != gantryv1.EnvScope_ENV_SCOPE_READ_ONLY {
		t.Errorf("SetStackEnv echoed %v", v)
	}
	stk := getStack(t, admin, "secretive")
	got := map[string]*gantryv1.EnvVar{}
	for _, v := range stk.GetEnv() {
		got[v.GetKey()] = v
	}
	if v := got["wo_DB_PASSWORD"]; v == nil || !v.GetSecret() || v.GetValue() != "" || v.GetName() != "DB_PASSWORD" {
		t.Errorf("secret variable in GetStack: %v", v)
	}
	if v := got["TF_LOG"]; v == nil || v.GetSecret() || v.GetValue() != "debug" {
		t.Errorf("plain variable in GetStack: %v", v)
	}
	for _, args := range [][]string{{"stack", "show", "secretive"}, {"-o", "json", "stack", "show", "secretive"}, {"-o", "json", "stack", "list"}} {
		if out := srv.mustCLI(t, args...); strings.Contains(out, plaintext) {
			t.Errorf("gantry %s prints the secret:\n%s", strings.Join(args, " "), out)
		}
	}
	if out := srv.mustCLI(t, "stack", "show", "secretive"); !regexpMatch(`(?m)^wo_DB_PASSWORD\s+WRITE_ONLY\s+\(secret\)$`, out) {
		t.Errorf("stack show does not list the secret as such:\n%s", out)
	}

	// Nothing stored holds the plaintext; the event holds ciphertext that
	// the keeper decrypts.
	var hits int
	if err := srv.pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%' OR metadata::text LIKE '%' || $1 || '%')
		      + (SELECT count(*) FROM rm_stack_env WHERE value LIKE '%' || $1 || '%')`, plaintext).Scan(&hits); err != nil {
		t.Fatal(err)
	}
	if hits != 0 {
		t.Fatalf("the plaintext secret is stored in %d rows", hits)
	}
	var ciphertext []byte
	if err := srv.pool.QueryRow(context.Background(),
		`SELECT decode(payload->>'ciphertext', 'base64') FROM events WHERE event_type = 'StackEnvSet' AND payload->>'key' = 'wo_DB_PASSWORD'`).Scan(&ciphertext); err != nil {
		t.Fatal(err)
	}
	pt, err := srv.keys.keeper.Decrypt(context.Background(), ciphertext)
	if err != nil || string(pt) != plaintext {
		t.Errorf("the stored ciphertext decrypts to %q, %v", pt, err)
	}
}
