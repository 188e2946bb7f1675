// Package workerapi is the server side of the worker HTTP API (its paths are in package
// services/worker/protocol, its client is services/worker/workerclient), through which pool
// launchers keep objects in the server's object storage without holding bucket credentials: the
// encrypted workspace of an UNCONFIRMED run, and each phase's full log. Launchers authenticate
// with their pool's id and secret (HTTP Basic); a request is served only for a run assigned to
// their pool.
package workerapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"gocloud.dev/gcerrors"

	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// MaxPhaseLogSize bounds one phase's full log.
const MaxPhaseLogSize = 64 << 20

// MaxUploadSize bounds any upload to the worker API: a saved workspace
// (streamed to the bucket, never held in memory) may be as large as this.
const MaxUploadSize = 1 << 30

// realm is the Basic authentication realm of the 401 answers.
const realm = `Basic realm="gantry workers"`

// PoolVerifier checks a pool's credentials; *poolauth.Verifier is one. An error matching
// bus.ErrRefused means wrong credentials; any other means they could not be checked.
type PoolVerifier interface {
	VerifyPoolSecret(ctx context.Context, poolID, secret string) (int, error)
}

// Config configures a Handler.
type Config struct {
	// Objects holds the workspaces (sealed to the pool's key already: stored as they come)
	// and the logs (encrypted at rest). Required.
	Objects *objstore.Store
	// Aggregates loads runs from the event store; the process's one aggregate repository.
	// Required.
	Aggregates *aggregate.Repository
	// Pools checks launchers' credentials. Required.
	Pools PoolVerifier
	// Logger receives failures. Default: discard.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	var errs []error
	if c.Objects == nil {
		errs = append(errs, errors.New("objects: required"))
	}
	if c.Aggregates == nil {
		errs = append(errs, errors.New("aggregates: required"))
	}
	if c.Pools == nil {
		errs = append(errs, errors.New("pools: required"))
	}
	return errors.Join(errs...)
}

// Handler serves the worker API under protocol.WorkerAPIPrefix.
type Handler struct {
	cfg        Config
	log        *slog.Logger
	workspaces executor.BucketStore
	mux        *http.ServeMux
}

// NewHandler returns the worker API's handler.
func NewHandler(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("worker api config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "workerapi"), workspaces: executor.BucketStore{Bucket: cfg.Objects.Bucket()}}
	h.mux = http.NewServeMux()
	workspace := protocol.WorkerAPIPrefix + protocol.WorkspacePath("{run}")
	h.mux.Handle("PUT "+workspace, h.authorized(true, h.putWorkspace))
	h.mux.Handle("GET "+workspace, h.authorized(false, h.getWorkspace))
	h.mux.Handle("PUT "+protocol.WorkerAPIPrefix+protocol.PhaseLogPath("{run}", "{phase}"), h.authorized(true, h.putPhaseLog))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// authorized authenticates the pool, loads the run and checks that it belongs to the pool
// before calling next with the run id. upload refuses terminal runs.
func (h *Handler) authorized(upload bool, next func(w http.ResponseWriter, r *http.Request, runID string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		poolID, secret, ok := r.BasicAuth()
		if !ok {
			unauthorized(w)
			return
		}
		if _, err := h.cfg.Pools.VerifyPoolSecret(r.Context(), poolID, secret); err != nil {
			if errors.Is(err, bus.ErrRefused) {
				h.log.Info("worker api: refused pool credentials", "pool_id", poolID, "err", err)
				unauthorized(w)
				return
			}
			h.internal(w, "check the pool's credentials", err)
			return
		}
		runID := r.PathValue("run")
		if err := ids.Run.Validate("run", runID); err != nil {
			plain(w, http.StatusBadRequest, err.Error())
			return
		}
		st, owner, err := h.loadRun(r.Context(), runID)
		if err != nil {
			h.internal(w, "load run "+runID, err)
			return
		}
		switch {
		case !st.Exists():
			plain(w, http.StatusNotFound, fmt.Sprintf("run %s: not found", runID))
			return
		case owner != poolID:
			plain(w, http.StatusForbidden, fmt.Sprintf("run %s: not assigned to worker pool %s", runID, poolID))
			return
		case upload && st.IsTerminal():
			plain(w, http.StatusConflict, fmt.Sprintf("run %s: is %s, it takes no more uploads", runID, st.Status()))
			return
		}
		next(w, r, runID)
	})
}

// loadRun returns the run's state, from the event store rather than a read model so that a run
// that ends stops taking uploads at once; an id that names another kind of aggregate is no run.
// owner is the pool the run is assigned to, or, when it holds no worker (UNCONFIRMED, ended),
// the pool it was last assigned to.
func (h *Handler) loadRun(ctx context.Context, runID string) (st run.State, owner string, err error) {
	st, err = aggregate.Load(ctx, h.cfg.Aggregates, aggregate.Run, runID)
	if errors.Is(err, aggregate.ErrStreamType) {
		return run.State{}, "", nil
	}
	if err != nil {
		return run.State{}, "", err
	}
	if pools := st.AssignedPools(); len(pools) > 0 {
		owner = pools[len(pools)-1]
	}
	return st, owner, nil
}

func (h *Handler) putWorkspace(w http.ResponseWriter, r *http.Request, runID string) {
	// The object exists only once the writer is closed with a live context: a body cut short
	// cancels it, so no partial workspace is ever stored.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ws, err := h.workspaces.Create(ctx, runID)
	if err != nil {
		h.internal(w, "store the workspace of "+runID, err)
		return
	}
	n, err := io.Copy(ws, r.Body)
	if err != nil {
		cancel()
		_ = ws.Close()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			plain(w, http.StatusRequestEntityTooLarge, "workspace: larger than the server accepts")
			return
		}
		h.log.Warn("worker api: workspace upload cut short", "run_id", runID, "bytes", n, "err", err)
		plain(w, http.StatusBadRequest, fmt.Sprintf("workspace: reading the body failed after %d bytes; nothing was stored", n))
		return
	}
	if err := ws.Close(); err != nil {
		h.internal(w, "store the workspace of "+runID, err)
		return
	}
	h.log.Info("worker api: stored a workspace", "run_id", runID, "bytes", n)
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) getWorkspace(w http.ResponseWriter, r *http.Request, runID string) {
	rc, err := h.workspaces.Open(r.Context(), runID)
	if gcerrors.Code(err) == gcerrors.NotFound {
		plain(w, http.StatusNotFound, fmt.Sprintf("run %s: no saved workspace", runID))
		return
	}
	if err != nil {
		h.internal(w, "read the workspace of "+runID, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if sized, ok := rc.(interface{ Size() int64 }); ok {
		w.Header().Set("Content-Length", strconv.FormatInt(sized.Size(), 10))
	}
	if _, err := io.Copy(w, rc); err != nil {
		// The status is sent: the client sees a short body (Content-Length) and fails.
		h.log.Warn("worker api: sending a workspace failed", "run_id", runID, "err", err)
	}
}

func (h *Handler) putPhaseLog(w http.ResponseWriter, r *http.Request, runID string) {
	phase := run.Phase(r.PathValue("phase"))
	if !phase.Valid() {
		names := make([]string, 0, len(run.Phases()))
		for _, p := range run.Phases() {
			names = append(names, string(p))
		}
		plain(w, http.StatusBadRequest, fmt.Sprintf("phase: unknown phase %q (want one of %s)", phase, strings.Join(names, ", ")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPhaseLogSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			plain(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("log: larger than %d bytes", MaxPhaseLogSize))
			return
		}
		plain(w, http.StatusBadRequest, "log: reading the body failed; nothing was stored")
		return
	}
	if err := h.cfg.Objects.WriteEncrypted(r.Context(), executor.PhaseLogKey(runID, phase), body, "text/plain; charset=utf-8"); err != nil {
		h.internal(w, "store a phase log", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// internal answers 500 without detail; the error goes to the log.
func (h *Handler) internal(w http.ResponseWriter, what string, err error) {
	h.log.Error("worker api: "+what, "err", err)
	plain(w, http.StatusInternalServerError, "internal error")
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", realm)
	plain(w, http.StatusUnauthorized, "pool id or secret not accepted")
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
