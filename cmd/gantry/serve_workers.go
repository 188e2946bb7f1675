package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/launcher"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

// publicPoolKeyFile is where gantry dev keeps the public pool's private key,
// in its data directory. It stays across starts: the saved workspaces of
// UNCONFIRMED runs are sealed to it.
const publicPoolKeyFile = "public-pool.key"

// devShutdownGrace is how long a run of an in-process launcher may go on
// after Ctrl-C before it is failed.
const devShutdownGrace = 10 * time.Second

// publicWorkers runs launchers of the built-in public pool in process.
type publicWorkers struct {
	wg sync.WaitGroup
	// stop ends the launchers: each lets its run finish (or fails it after
	// the shutdown grace) and reports its exit.
	stop context.CancelFunc
}

// startPublicWorkers makes the public pool ready for the key in dataDir
// (created at the first start) and starts n launchers of it. The launchers
// run until ctx ends or stop is called; their runs get path as PATH.
func startPublicWorkers(ctx context.Context, cmds *commands.Service, dataDir, path string, n int, docker *executor.DockerConfig, tracer trace.TracerProvider, log *slog.Logger) (*publicWorkers, error) {
	key, err := loadOrCreatePoolKey(filepath.Join(dataDir, publicPoolKeyFile))
	if err != nil {
		return nil, err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gantry public pool"}}, key)
	if err != nil {
		return nil, fmt.Errorf("public pool: make a CSR: %w", err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	encoded, err := cmds.EnsurePublicPool(ctx, commands.Caller{Actor: "system:dev"}, csr)
	if err != nil {
		return nil, fmt.Errorf("public pool: %w", err)
	}
	token, err := protocol.DecodePoolToken(encoded)
	if err != nil {
		return nil, fmt.Errorf("public pool: %w", err)
	}
	workDir := filepath.Join(dataDir, "runs")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return nil, fmt.Errorf("public pool: %w", err)
	}
	absWork, err := filepath.Abs(workDir)
	if err != nil {
		return nil, fmt.Errorf("public pool: %w", err)
	}
	lctx, stop := context.WithCancel(ctx)
	w := &publicWorkers{stop: stop}
	uploads := workerclient.New(token.ServerURL, token.PoolID, token.PoolSecret, nil)
	for i := range n {
		cfg := launcher.Config{Token: token, PoolKey: key, Metadata: map[string]string{"launcher": fmt.Sprintf("dev-%d", i+1)},
			Version: binaryVersion(), ShutdownGrace: devShutdownGrace, Logger: log, TracerProvider: tracer}
		cfg.Executor.WorkDir, cfg.Executor.Path, cfg.Executor.Docker = absWork, path, docker
		// One cache for the workers of this process: they lock its entries.
		cfg.Executor.RepoCacheDir = launcher.DefaultRepoCacheDir(absWork)
		l, err := launcher.New(cfg, uploads)
		if err != nil {
			stop()
			return nil, err
		}
		l.Close()
		w.wg.Go(func() { superviseLauncher(lctx, cfg, uploads, log) })
	}
	return w, nil
}

// relaunchDelay is how long gantry dev waits before it replaces a launcher
// that exited.
const relaunchDelay = time.Second

// superviseLauncher runs a launcher and, as a process supervisor would,
// starts a fresh one (a new worker) whenever it exits on its own: after its
// pool was cycled, or when the server gave its worker up. A launcher whose
// credentials are refused (someone reset the public pool) is not replaced.
func superviseLauncher(ctx context.Context, cfg launcher.Config, uploads launcher.Uploads, log *slog.Logger) {
	for {
		l, err := launcher.New(cfg, uploads)
		if err == nil {
			err = l.Run(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, launcher.ErrRefused) {
			log.Error("public pool launcher refused; not restarting it (restart gantry dev)", "pool_id", ids.PublicPool, "err", err)
			return
		}
		if err != nil {
			log.Error("public pool launcher stopped; starting another", "pool_id", ids.PublicPool, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(relaunchDelay):
		}
	}
}

// Stop ends the launchers and waits until they exited.
func (w *publicWorkers) Stop() {
	w.stop()
	w.wg.Wait()
}

// loadOrCreatePoolKey reads the PEM key at path, or creates an ECDSA P-256
// key there (mode 0600) if there is none.
func loadOrCreatePoolKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("public pool key: %w", err)
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("public pool key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("public pool key: %w", err)
	}
	k, err := launcher.ParsePoolKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("public pool key %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("public pool key %s: want an ECDSA key", path)
	}
	return key, nil
}
