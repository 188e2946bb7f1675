package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/nats-io/nats.go"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// rsaCSR returns a PEM CSR for a new RSA key of the given size.
func rsaCSR(t testing.TB, bits int) (csrPEM string, key *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return csrFor(t, key), key
}

func csrFor(t testing.TB, key crypto.Signer) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gantry pool"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// poolState loads a pool's aggregate from the event store.
func poolState(t *testing.T, srv *testServer, poolID string) workerpool.State {
	t.Helper()
	events, err := srv.store.Load(context.Background(), poolID)
	if err != nil {
		t.Fatal(err)
	}
	var s workerpool.State
	for _, e := range events {
		v, err := srv.store.Registry().Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		s.Apply(v.(workerpool.Event))
	}
	return s
}

// checkToken decodes a pool token, checks every documented field and that
// the certificate is the CA's, for key; it returns the token.
func checkToken(t *testing.T, srv *testServer, raw, poolID string, key crypto.Signer) protocol.PoolToken {
	t.Helper()
	js, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatalf("token is not base64: %v", err)
	}
	var fields map[string]string
	if err := json.Unmarshal(js, &fields); err != nil {
		t.Fatalf("token is not a JSON object of strings: %v", err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"certificate", "nats_url", "pool_id", "pool_secret", "server_url"}; !slices.Equal(keys, want) {
		t.Errorf("token fields %v, want %v", keys, want)
	}
	tok, err := protocol.DecodePoolToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	if tok.PoolID != poolID || tok.ServerURL != srv.url || tok.NATSURL != srv.natsURL || tok.PoolSecret == "" {
		t.Errorf("token %v (server %s, NATS %s), want pool %s", tok, tok.ServerURL, tok.NATSURL, poolID)
	}
	cert, err := srv.keys.ca.Verify([]byte(tok.Certificate), time.Now())
	if err != nil {
		t.Fatalf("the token's certificate does not verify against the CA: %v", err)
	}
	if cert.Subject.CommonName != poolID {
		t.Errorf("certificate subject %q, want %s", cert.Subject.CommonName, poolID)
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		t.Error("the certificate is not for the CSR's key")
	}
	return tok
}

func TestWorkerPoolCreateTokenAndReset(t *testing.T) {
	srv := startServer(t)
	csr, key := rsaCSR(t, 2048)
	csrFile := filepath.Join(t.TempDir(), "gantry.csr")
	if err := os.WriteFile(csrFile, []byte(csr), 0o600); err != nil {
		t.Fatal(err)
	}
	out := srv.mustCLI(t, "-o", "json", "pool", "create", "builders", "--csr", csrFile, "--description", "CI machines",
		"--label", "env=ci", "--drift-run-limit", "2")
	var created struct {
		Pool struct {
			ID                     string   `json:"id"`
			Name                   string   `json:"name"`
			Labels                 []string `json:"labels"`
			DriftDetectionRunLimit int      `json:"drift_detection_run_limit"`
			Generation             int      `json:"generation"`
			Certificate            struct {
				Fingerprint  string `json:"fingerprint"`
				KeyAlgorithm string `json:"key_algorithm"`
				KeyBits      int    `json:"key_bits"`
			} `json:"certificate"`
		} `json:"pool"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("pool create -o json printed %q: %v", out, err)
	}
	p := created.Pool
	if !strings.HasPrefix(p.ID, "wp_") || p.Name != "builders" || !slices.Equal(p.Labels, []string{"env=ci"}) ||
		p.DriftDetectionRunLimit != 2 || p.Generation != 1 || p.Certificate.KeyAlgorithm != "KEY_ALGORITHM_RSA" || p.Certificate.KeyBits != 2048 {
		t.Errorf("created pool %+v", p)
	}
	tok := checkToken(t, srv, created.Token, p.ID, key)
	if s := poolState(t, srv, p.ID); !s.SecretMatches(keyring.HashPoolSecret(tok.PoolSecret)) {
		t.Fatal("the pool does not hold the hash of the token's secret")
	}
	if strings.Contains(srv.eventsText(t), tok.PoolSecret) {
		t.Error("the pool secret is stored in the events")
	}

	// A launcher connects to NATS with the token's pool id and secret.
	closed := make(chan struct{})
	launcher, err := nats.Connect(tok.NATSURL, bus.PoolCredentials(p.ID, tok.PoolSecret),
		nats.MaxReconnects(2), nats.ReconnectWait(50*time.Millisecond), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("launcher connect with the pool token: %v", err)
	}
	defer launcher.Close()
	if err := launcher.Publish(protocol.HeartbeatSubject(p.ID, "wkr_test"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := launcher.Flush(); err != nil {
		t.Fatal(err)
	}

	// Reset by name with a new key: a new token; the old secret no longer matches.
	csr2, key2 := rsaCSR(t, 2048)
	resp, err := srv.as(srv.adminToken(t)).pools.ResetWorkerPool(testCtx(t), connect.NewRequest(&gantryv1.ResetWorkerPoolRequest{Pool: "builders", Csr: csr2}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetToken() == created.Token {
		t.Fatal("reset returned the old token")
	}
	tok2 := checkToken(t, srv, resp.Msg.GetToken(), p.ID, key2)
	state := poolState(t, srv, p.ID)
	if state.SecretMatches(keyring.HashPoolSecret(tok.PoolSecret)) {
		t.Error("the old secret still matches the pool after a reset")
	}
	if !state.SecretMatches(keyring.HashPoolSecret(tok2.PoolSecret)) {
		t.Error("the new secret does not match the pool")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the launcher's NATS connection survived the pool reset")
	}
	if c, err := nats.Connect(tok.NATSURL, bus.PoolCredentials(p.ID, tok.PoolSecret)); err == nil {
		c.Close()
		t.Fatal("NATS accepted the old pool secret after a reset")
	}
	c2, err := nats.Connect(tok2.NATSURL, bus.PoolCredentials(p.ID, tok2.PoolSecret))
	if err != nil {
		t.Fatalf("NATS refused the new pool secret: %v", err)
	}
	c2.Close()
	if g := resp.Msg.GetPool().GetGeneration(); g != 2 || resp.Msg.GetPool().GetCertificate().GetFingerprint() == p.Certificate.Fingerprint {
		t.Errorf("after reset: generation %d, fingerprint %s (was %s)", g, resp.Msg.GetPool().GetCertificate().GetFingerprint(), p.Certificate.Fingerprint)
	}

	// ECDSA keys are accepted too.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecResp, err := srv.as(srv.adminToken(t)).pools.CreateWorkerPool(testCtx(t), connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "edge", Csr: csrFor(t, ec)}))
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, srv, ecResp.Msg.GetToken(), ecResp.Msg.GetPool().GetId(), ec)
}

func TestWorkerPoolRefusesWeakKeys(t *testing.T) {
	srv := startServer(t)
	admin := srv.as(srv.adminToken(t))
	weak, _ := rsaCSR(t, 1024)
	before := srv.eventCount(t)
	_, err := admin.pools.CreateWorkerPool(testCtx(t), connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "weak", Csr: weak}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "csr: ") || !strings.Contains(err.Error(), "2048") {
		t.Fatalf("1024-bit CSR: %v, want InvalidArgument naming csr and the 2048-bit minimum", err)
	}
	if after := srv.eventCount(t); after != before {
		t.Errorf("a refused pool wrote %d events", after-before)
	}
}

func TestDrainAndUndrainWorker(t *testing.T) {
	srv := startServer(t)
	admin := srv.as(srv.adminToken(t))
	csr, _ := rsaCSR(t, 2048)
	created, err := admin.pools.CreateWorkerPool(testCtx(t), connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{Name: "fleet", Csr: csr}))
	if err != nil {
		t.Fatal(err)
	}
	poolID := created.Msg.GetPool().GetId()
	// Workers register in a later issue; here one registers through the store.
	register(t, srv, "wkr_one", poolID, map[string]string{"instance_id": "i-123"})
	register(t, srv, "wkr_other", "wp_elsewhere", nil)

	out := srv.mustCLI(t, "pool", "drain", "fleet", "wkr_one")
	if strings.TrimSpace(out) != "worker wkr_one is DRAINED" {
		t.Errorf("pool drain printed %q", out)
	}
	workers := srv.mustCLI(t, "pool", "workers", poolID)
	if !regexpMatch(`(?m)^wkr_one\s+DRAINED\s+-\s+\S+\s+-\s+instance_id=i-123$`, workers) {
		t.Errorf("pool workers:\n%s", workers)
	}
	resp, err := admin.pools.UndrainWorker(testCtx(t), connect.NewRequest(&gantryv1.UndrainWorkerRequest{Pool: poolID, Worker: "wkr_one"}))
	if err != nil {
		t.Fatal(err)
	}
	if w := resp.Msg.GetWorker(); w.GetStatus() != gantryv1.WorkerStatus_WORKER_STATUS_IDLE || !reflect.DeepEqual(w.GetMetadata(), map[string]string{"instance_id": "i-123"}) {
		t.Errorf("undrained worker %v", w)
	}
	// A worker of another pool is not found through this one.
	_, err = admin.pools.DrainWorker(testCtx(t), connect.NewRequest(&gantryv1.DrainWorkerRequest{Pool: "fleet", Worker: "wkr_other"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("draining another pool's worker: %v, want NotFound", err)
	}

	cycled, err := admin.pools.CyclePool(testCtx(t), connect.NewRequest(&gantryv1.CyclePoolRequest{Pool: "fleet"}))
	if err != nil {
		t.Fatal(err)
	}
	if cycled.Msg.GetPool().GetCycleRequestedAt() == nil {
		t.Error("cycle did not record its request")
	}
}

// register appends a WorkerRegistered event, as a launcher will.
func register(t *testing.T, srv *testServer, workerID, poolID string, md map[string]string) {
	t.Helper()
	ctx := eventstore.WithMetadata(context.Background(), eventstore.Metadata{Actor: workerID})
	_, err := srv.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamWorker, ID: workerID}, eventstore.NoStream,
		worker.WorkerRegistered{WorkerID: workerID, PoolID: poolID, Metadata: md, At: time.Now().UTC(), Actor: workerID})
	if err != nil {
		t.Fatal(err)
	}
}

// eventsText returns every stored event's payload and metadata as text.
func (s *testServer) eventsText(t *testing.T) string {
	t.Helper()
	var text string
	if err := s.pool.QueryRow(context.Background(), "SELECT coalesce(string_agg(payload::text || metadata::text, E'\\n'), '') FROM events").Scan(&text); err != nil {
		t.Fatal(err)
	}
	return text
}

// createPoolCLI creates a private pool named name with `gantry pool create`
// and a fresh RSA key, and returns the pool id, the token it printed and the key.
func createPoolCLI(t testing.TB, srv *testServer, name string) (id, token string, key *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id, token = createPoolWithKey(t, srv, name, key)
	return id, token, key
}

// createPoolWithKey creates pool name with `gantry pool create --csr`, the
// CSR made with key, and returns the pool's id and token.
func createPoolWithKey(t testing.TB, srv *testServer, name string, key crypto.Signer) (id, token string) {
	t.Helper()
	csrFile := filepath.Join(t.TempDir(), "gantry.csr")
	if err := os.WriteFile(csrFile, []byte(csrFor(t, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	var created struct {
		Pool struct {
			ID string `json:"id"`
		} `json:"pool"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "pool", "create", name, "--csr", csrFile)), &created); err != nil {
		t.Fatal(err)
	}
	return created.Pool.ID, created.Token
}
