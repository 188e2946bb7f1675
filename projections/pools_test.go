package projections_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/projections"
)

// realCert returns a self-signed certificate valid until notAfter.
func realCert(t testing.TB, serial int64, notAfter time.Time) workerpool.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "pool"},
		NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return workerpool.Certificate{
		PEM:    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Serial: big.NewInt(serial).String(), Fingerprint: hex.EncodeToString(sum[:]),
		KeyAlgorithm: workerpool.ECDSA, KeyBits: 256,
	}
}

func TestPoolsAndWorkersProjections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := newSim("pw")
	expiry := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	cert1, cert2 := realCert(t, 7, expiry), realCert(t, 8, expiry.AddDate(1, 0, 0))
	var a, b *lane
	var busyRun string
	var idle, lost, exited, drained string
	steps := record(t, s, func() {
		s.createPool(ids.PublicPool, "public")
		u := s.begin()
		u.pool("wp_private", workerpool.Create{PoolID: "wp_private", Name: "Private", Description: "ours", Labels: []string{"b", "a"},
			DriftRunLimit: 2, Certificate: cert1, SecretHash: "h1", Actor: "user:admin", At: s.now()})
		u.commit()
		u = s.begin()
		u.pool("wp_private", workerpool.Update{Name: "private", Description: "ours, renamed", Labels: []string{"c"}, DriftRunLimit: 3, Actor: "user:admin", At: s.now()})
		u.commit()
		u = s.begin()
		u.pool("wp_private", workerpool.Reset{Certificate: cert2, SecretHash: "h2", Actor: "user:admin", At: s.now()})
		u.commit()
		u = s.begin()
		u.pool("wp_private", workerpool.Cycle{Actor: "user:admin", At: s.now()})
		u.commit()
		s.createPool("wp_gone", "gone")
		u = s.begin()
		u.pool("wp_gone", workerpool.Delete{Actor: "user:admin", At: s.now()})
		u.commit()
		s.createPool("wp_reused", "gone") // a deleted pool's name is free again

		a = s.newLane("a", "wp_private")
		b = s.newLane("b", "wp_private")
		busyRun = a.trigger(run.Tracked, false)
		a.assign(busyRun)
		idle = b.workerID
		for _, w := range []*string{&lost, &exited, &drained} {
			*w = s.id(ids.Worker)
			u := s.begin()
			u.worker(*w, worker.Register{WorkerID: *w, PoolID: "wp_private", Actor: "launcher", At: s.now()})
			u.commit()
		}
		u = s.begin()
		u.worker(lost, worker.MarkLost{Note: "no heartbeat", Actor: "system:scheduler", At: s.now()})
		u.worker(exited, worker.Deregister{Note: "SIGTERM", Actor: "launcher", At: s.now()})
		u.worker(drained, worker.Drain{Actor: "user:admin", At: s.now()})
		u.commit()
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)

	p, err := e.q.GetPool(ctx, "PRIVATE")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "wp_private" || p.Name != "private" || p.Description != "ours, renamed" || !slices.Equal(p.Labels, []string{"c"}) ||
		p.DriftRunLimit != 3 || p.Public || p.Generation != 2 || p.CycleRequestedAt == nil || p.Version != s.versions["wp_private"] {
		t.Errorf("pool = %+v", p)
	}
	c := p.Certificate
	if c.Serial != "8" || c.Fingerprint != cert2.Fingerprint || c.PEM != cert2.PEM || c.KeyAlgorithm != workerpool.ECDSA || c.KeyBits != 256 ||
		c.NotAfter == nil || !c.NotAfter.Equal(expiry.AddDate(1, 0, 0)) {
		t.Errorf("certificate = %+v", c)
	}
	// Live workers: a (busy), b (idle) and the drained one.
	if p.Workers != 3 || p.BusyWorkers != 1 {
		t.Errorf("workers %d, busy %d; want 3 and 1", p.Workers, p.BusyWorkers)
	}
	if pub, err := e.q.GetPool(ctx, ids.PublicPool); err != nil || !pub.Public || pub.Certificate.NotAfter != nil {
		t.Errorf("public pool = %+v, %v", pub, err)
	}
	if _, err := e.q.GetPool(ctx, "wp_gone"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("deleted pool: err = %v, want ErrNotFound", err)
	}
	if r, err := e.q.GetPool(ctx, "gone"); err != nil || r.ID != "wp_reused" {
		t.Errorf("reused name: %+v, %v", r, err)
	}

	var names []string
	token := ""
	for range 5 {
		page, next, err := e.q.ListPools(ctx, token, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			names = append(names, v.Name)
		}
		if token = next; token == "" {
			break
		}
	}
	if want := []string{"gone", "private", "public"}; !slices.Equal(names, want) {
		t.Errorf("pools = %v, want %v", names, want)
	}

	ws, err := e.q.ListWorkers(ctx, "wp_private")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]projections.WorkerView{}
	for _, w := range ws {
		got[w.ID] = w
	}
	if len(ws) != 3 {
		t.Errorf("workers = %+v, want a, b and the drained one", ws)
	}
	if w := got[a.workerID]; w.Status != worker.Busy || w.RunID != busyRun || w.Metadata["host"] != "a-host" || w.RegisteredAt.IsZero() ||
		w.LauncherVersion != "v1.4.0" {
		t.Errorf("busy worker = %+v", w)
	}
	if w := got[idle]; w.Status != worker.Idle || w.RunID != "" {
		t.Errorf("idle worker = %+v", w)
	}
	if w := got[drained]; w.Status != worker.Drained || !w.Drained || w.Metadata == nil || w.LauncherVersion != "" {
		t.Errorf("drained worker = %+v", w)
	}
	for _, gone := range []string{lost, exited} {
		if _, ok := got[gone]; ok {
			t.Errorf("gone worker %s is listed", gone)
		}
	}
	var goneStatus []string
	rows, err := e.pool.Query(ctx, "SELECT status FROM rm_workers WHERE id = ANY($1) ORDER BY status", []string{lost, exited})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			t.Fatal(err)
		}
		goneStatus = append(goneStatus, st)
	}
	if !slices.Equal(goneStatus, []string{"EXITED", "LOST"}) {
		t.Errorf("gone workers' statuses = %v", goneStatus)
	}

	// The run finishes: the worker is idle again.
	more := record(t, s, func() {
		a.start(busyRun, run.PhasePreparing)
		a.do(busyRun, run.Fail{Note: "boom", Actor: a.workerID, At: s.now()})
	})
	appendSteps(t, e.store, more)
	catchUp(t, e)
	ws, err = e.q.ListWorkers(ctx, "wp_private")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.ID == a.workerID && (w.Status != worker.Idle || w.RunID != "") {
			t.Errorf("worker after its run = %+v", w)
		}
	}
	if p, err := e.q.GetPool(ctx, "wp_private"); err != nil || p.BusyWorkers != 0 {
		t.Errorf("busy workers after the run: %+v, %v", p, err)
	}
}
