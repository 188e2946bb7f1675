package executor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/worker/executor"
)

func TestSecretsNeverReachTheLogs(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		const (
			password   = "s3cr3t-Value-42"
			tfSecret   = "tf-var-secret-913"
			token      = "tok-987654321"     // plain, but named in the mask list
			launcherPW = "launcher-pw-555"   // whitelisted and named in the mask list
			extra      = "extra-mask-777"    // a value to mask
			phasePW    = "phase-credential-" // + the phase: from PhaseEnv
			pem        = "-----BEGIN TEST KEY-----\nAAAAsecretline1\nBBBBsecretline2\n-----END TEST KEY-----\n"
		)
		secrets := []string{password, tfSecret, token, launcherPW, extra, phasePW, "AAAAsecretline1", "BBBBsecretline2",
			"s3cr3t"} // no fragment of a secret split across two reads either
		repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
		h := newHarnessFor(t, kind, nil)
		j := job(repo, commit)
		j.Debug = true
		j.Env = []executor.Variable{
			{Name: "DB_PASSWORD", Value: password, Secret: true},
			{Name: "TF_VAR_message", Value: tfSecret, Secret: true}, // terraform prints it in the plan
			{Name: "API_TOKEN", Value: token},
			{Name: "PEM", Value: pem, Secret: true, Scope: stack.ScopeReadOnly},
		}
		j.Whitelist = []executor.Variable{{Name: "LAUNCHER_SECRET", Value: launcherPW}}
		j.MaskNames = []string{"LAUNCHER_SECRET", "API_TOKEN"}
		j.MaskValues = []string{extra}
		j.PhaseEnv = func(_ context.Context, p run.Phase) ([]executor.Variable, error) {
			return []executor.Variable{{Name: "TF_HTTP_PASSWORD", Value: phasePW + string(p), Secret: true}}, nil
		}
		j.Hooks.BeforePlan = []string{
			`echo "pw=$DB_PASSWORD token=$API_TOKEN launcher=$LAUNCHER_SECRET extra=` + extra + ` http=$TF_HTTP_PASSWORD"`,
			// Two writes, two reads: "s3cr3t-", then "Value-42 end".
			`printf 'split=%s' "${DB_PASSWORD%%V*}"; sleep 0.3; printf '%s end\n' "${DB_PASSWORD#*-}"`,
			`printf '%s\n' "$PEM"`,
			`echo "on stderr: $DB_PASSWORD" >&2`,
			// A secret across the point where an over-long line is cut in pieces.
			`head -c 65531 /dev/zero | tr '\0' x; printf '%s' "$DB_PASSWORD"; head -c 70000 /dev/zero | tr '\0' y; echo`,
			`printf 'no newline: %s' "$DB_PASSWORD"`,
		}
		j.Hooks.AfterApply = []string{`echo "apply http=$TF_HTTP_PASSWORD"`}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		if res.Status != run.Finished {
			t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
		}

		ctx := context.Background()
		stored := map[string]string{"streamed": rec.allLogs()}
		for _, p := range res.Phases {
			if err := executor.StorePhaseLog(ctx, h.bucket, j.RunID, p.Phase, p.Log); err != nil {
				t.Fatal(err)
			}
			data, err := h.bucket.ReadAll(ctx, executor.PhaseLogKey(j.RunID, p.Phase))
			if err != nil {
				t.Fatal(err)
			}
			stored["stored "+string(p.Phase)] = string(data)
		}
		for where, log := range stored {
			for _, s := range secrets {
				if strings.Contains(log, s) {
					t.Errorf("the %s log contains the secret %q", where, s)
				}
			}
		}
		planLog := stored["stored PLANNING"]
		for _, s := range []string{
			"pw=*** token=*** launcher=*** extra=*** http=***\n",
			"split=*** end\n",
			"\n***\n***\n***\n***\n", // every line of the PEM secret
			"on stderr: ***\n",
			"x\n***yyy", // the piece ends before the secret, the next begins with it
			"\nno newline: ***\n",
			`input  = "***"`, // terraform's own output
		} {
			if !strings.Contains(planLog, s) {
				t.Errorf("the PLANNING log lacks %q", s)
			}
		}
		if !strings.Contains(stored["stored APPLYING"], "apply http=***\n") {
			t.Errorf("the APPLYING log:\n%s", stored["stored APPLYING"])
		}
	})
}
