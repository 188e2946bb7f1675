package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"testing"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/testenv"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// encryptionKeyEnv is GANTRY_ENCRYPTION_RSA_PRIVATE_KEY as an operator sets
// it: base64 of a PEM RSA key.
func encryptionKeyEnv(t testing.TB) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// A run end to end with GANTRY_BLOB_URL=s3://... on an S3-compatible server
// and the built-in rsakey:// keeper: the plan's saved workspace, the state
// terraform writes, the phase logs all go to the bucket, and what is there
// is ciphertext (the workspace sealed to the pool's key, the rest encrypted
// with the server's keeper).
func TestRunEndToEndOnS3WithTheBuiltInKeeper(t *testing.T) {
	s3 := testenv.S3(t)
	blobURL := s3.NewBucket(t, "gantry")
	srv := startServer(t, func(c *serverConfig) {
		c.blobURL = blobURL
		c.secretsURL, c.rsaKey = "rsakey://", encryptionKeyEnv(t)
	})
	pool := startLauncherPool(t, srv, "s3", 1)
	c := srv.as(srv.adminToken(t))
	stack := c.createStack(t, &gantryv1.CreateStackRequest{Name: "ons3", RepositoryUrl: demoRepo(t), WorkerPoolId: pool.id, ManagedState: true})
	srv.mustCLI(t, "stack", "env", "set", "ons3", "TF_VAR_greeting", "greeting-kept-in-s3")

	run := c.trigger(t, stack, gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_UNCONFIRMED)
	bucket := srv.objects(t).Bucket()
	workspace, err := bucket.ReadAll(testCtx(t), executor.WorkspaceKey(run))
	if err != nil {
		t.Fatalf("no saved workspace in the S3 bucket while UNCONFIRMED: %v", err)
	}
	if !bytes.HasPrefix(workspace, []byte("GANTRYWS")) {
		t.Errorf("the saved workspace is not sealed: starts %q", workspace[:min(16, len(workspace))])
	}
	srv.mustCLI(t, "run", "confirm", run)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)

	if n := srv.stateVersions(t, "ons3"); n != 1 {
		t.Errorf("%d state versions, want 1", n)
	}
	state := srv.mustCLI(t, "state", "pull", "ons3")
	if !strings.Contains(state, "greeting-kept-in-s3") || !strings.Contains(state, `"lineage"`) {
		t.Errorf("state pull from S3:\n%s", state)
	}
	logs := srv.mustCLI(t, "run", "logs", run)
	if !strings.Contains(logs, "Apply complete") {
		t.Errorf("the run's logs from S3 lack the apply:\n%s", logs)
	}

	var stateObjects, logObjects int
	it := bucket.List(nil)
	for {
		obj, err := it.Next(testCtx(t))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raw, err := bucket.ReadAll(testCtx(t), obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(obj.Key, "state/"):
			stateObjects++
		case strings.HasPrefix(obj.Key, "runs/"+run+"/logs/"):
			logObjects++
		}
		for _, clear := range []string{"greeting-kept-in-s3", "lineage", "terraform_data", "Apply complete", "Plan:"} {
			if bytes.Contains(raw, []byte(clear)) {
				t.Errorf("the object %s in the bucket shows %q", obj.Key, clear)
			}
		}
	}
	if stateObjects != 1 || logObjects < 4 {
		t.Errorf("%d state objects and %d phase logs in the bucket, want 1 and at least 4", stateObjects, logObjects)
	}
}

// The keeper is chosen once: a server started on the same database with
// another keeper stops at once, naming GANTRY_SECRETS_URL, and changes
// nothing.
func TestServerRefusesAnotherKeeperThanTheInstallations(t *testing.T) {
	srv := startServer(t)
	for name, c := range map[string]serverConfig{
		"another base64key": {secretsURL: "base64key://" + base64.URLEncoding.EncodeToString(make([]byte, 32))},
		"an rsakey":         {secretsURL: "rsakey://", rsaKey: encryptionKeyEnv(t)},
	} {
		c.listen, c.blobURL, c.signingKeys = freeAddr(t), srv.blobURL, srv.signing
		c.log = slog.New(slog.DiscardHandler)
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		err := runServer(ctx, srv.pool, srv.bus, c)
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), "GANTRY_SECRETS_URL: the secrets keeper is chosen once, at install") ||
			!strings.Contains(err.Error(), "installation's base64key keeper") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The installation's keeper still works.
	srv.mustCLI(t, "stack", "list")
}

// What an operator meets with a bad GANTRY_BLOB_URL or an unreachable KMS:
// `gantry server` stops, and its error names the variable and the problem.
func TestServerNamesABadBlobURLOrKeeper(t *testing.T) {
	kms := freeAddr(t) // nothing listens there
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAGANTRYTEST", "AWS_SECRET_ACCESS_KEY": "gantry-test-secret", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
	base := map[string]string{
		"GANTRY_NATS_URL":    testenv.NATS(t).URL(),
		"GANTRY_SECRETS_URL": "base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=",
	}
	signing, _, _ := signingPEM(t)
	base[envSigningKey] = string(signing)
	for _, c := range []struct {
		vars map[string]string
		want []string
	}{
		{map[string]string{"GANTRY_BLOB_URL": "s4://gantry"}, []string{`gantry: GANTRY_BLOB_URL: the value has scheme "s4": want azblob, file, gs, mem or s3`}},
		{map[string]string{"GANTRY_BLOB_URL": "s3://?region=us-east-1"}, []string{"gantry: GANTRY_BLOB_URL:", "names no bucket (s3://<bucket>)"}},
		{map[string]string{"GANTRY_BLOB_URL": "mem://", "GANTRY_SECRETS_URL": "awskms://alias/gantry?endpoint=http://" + kms},
			[]string{"gantry: GANTRY_SECRETS_URL: keeper check: keeper awskms: encrypt", kms, "connection refused"}},
		{map[string]string{"GANTRY_BLOB_URL": "mem://", "GANTRY_SECRETS_URL": "rsakey://"},
			[]string{"gantry: GANTRY_SECRETS_URL: open keeper rsakey: rsakey:// takes the RSA private key from GANTRY_ENCRYPTION_RSA_PRIVATE_KEY, which is empty"}},
	} {
		vars := maps.Clone(base)
		vars["GANTRY_DATABASE_URL"] = testenv.Postgres(t) // a new installation each
		maps.Copy(vars, c.vars)
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		code := run(ctx, []string{"server", "--listen", freeAddr(t)}, env(vars), &stdout, &stderr)
		cancel()
		for _, w := range c.want {
			if code != 1 || !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: exit %d, stderr %q; want it to say %q", c.vars, code, stderr.String(), w)
			}
		}
	}
}
