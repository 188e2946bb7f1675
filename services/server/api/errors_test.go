package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/state"
	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/statebackend"
)

func TestConnectError(t *testing.T) {
	secret := "password=hunter2 host=10.9.8.7"
	tests := []struct {
		name     string
		err      error
		code     connect.Code
		contains string
	}{
		{"canceled", fmt.Errorf("read: %w", context.Canceled), connect.CodeCanceled, "canceled"},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "deadline"},
		{"invalid", fmt.Errorf("validate: %w", &invalidArgumentError{field: "from_position", reason: "must not be negative"}), connect.CodeInvalidArgument, "from_position: must not be negative"},
		{"not found", fmt.Errorf("event at position 9 (%s): %w", secret, eventstore.ErrNotFound), connect.CodeNotFound, "not found"},
		{"conflict", &eventstore.ConflictError{Stream: eventstore.Stream{Type: "run", ID: "run_a"}, Expected: 1, Actual: 2}, connect.CodeAborted, "version conflict"},
		{"stopping", fmt.Errorf("follow: %w", errServerStopping), connect.CodeUnavailable, "shutting down"},
		{"other", errors.New(secret), connect.CodeInternal, "internal error (ref "},
		{"validation", &domain.ValidationError{Field: "branch", Problem: "is not a valid branch name"}, connect.CodeInvalidArgument, "branch: is not a valid branch name"},
		{"joined validations", errors.Join(&domain.ValidationError{Field: "name", Problem: "must not be empty"}, &domain.ValidationError{Field: "tool", Problem: "unknown"}),
			connect.CodeInvalidArgument, "name: must not be empty; tool: unknown"},
		{"domain not found", fmt.Errorf("stack stk_1: %w", domain.ErrNotFound), connect.CodeNotFound, "stack stk_1: not found"},
		{"read model not found", fmt.Errorf("run %q: %w", "run_1", projections.ErrNotFound), connect.CodeNotFound, `run "run_1": not found`},
		{"already exists", fmt.Errorf("stack name %q is taken: %w", "web", domain.ErrAlreadyExists), connect.CodeAlreadyExists, `stack name "web" is taken`},
		{"illegal transition", &run.IllegalTransitionError{From: run.Queued, Command: "Confirm"}, connect.CodeFailedPrecondition, "not allowed in status QUEUED"},
		{"manual lock", &stack.LockedByOtherError{Holder: "user:alice"}, connect.CodeFailedPrecondition, "locked by user:alice"},
		{"stack in use", fmt.Errorf("stack stk_1: %w", stack.ErrInUse), connect.CodeFailedPrecondition, "in use"},
		{"worker gone", fmt.Errorf("worker wkr_1: %w", worker.ErrGone), connect.CodeFailedPrecondition, "gone"},
		{"repository", &commands.RepositoryError{Field: "branch", Problem: "does not exist"}, connect.CodeFailedPrecondition, "branch: does not exist"},
		{"permission", fmt.Errorf("force unlock: %w", commands.ErrPermissionDenied), connect.CodePermissionDenied, "permission denied"},
		{"page token", fmt.Errorf("list stacks: %w: not base64", projections.ErrInvalidPageToken), connect.CodeInvalidArgument, "page_token: "},
		{"not caught up", fmt.Errorf("trigger run (event position 9): %w", commands.ErrNotCaughtUp), connect.CodeDeadlineExceeded, "recorded"},
		{"read lag", fmt.Errorf("get run after event 3/9: %w: %w", errReadLag, context.DeadlineExceeded), connect.CodeUnavailable, "not caught up"},
		{"conflict after retries", fmt.Errorf("trigger run: gave up after 5 attempts: %w",
			&eventstore.ConflictError{Stream: eventstore.Stream{Type: "stack", ID: "stk_1"}, Expected: 3, Actual: 4}), connect.CodeAborted, "version conflict"},
		{"unauthenticated", errUnauthenticated, connect.CodeUnauthenticated, "missing or invalid token"},
		{"refused API key", fmt.Errorf("%w: wrong secret for API key ak_1 (%s)", auth.ErrInvalidAPIKey, secret), connect.CodeUnauthenticated, "invalid or revoked API key"},
		{"rollback not allowed", &state.NotAllowedError{Reason: "a run is in progress on the stack"}, connect.CodeFailedPrecondition, "rollback not allowed: a run is in progress"},
		{"terraform lock", &state.LockedError{Holder: state.Holder{LockID: "l1", RunID: "run_1"}}, connect.CodeFailedPrecondition, `state is locked: lock "l1" taken by run run_1`},
		{"state conflict", &state.SerialError{Current: 3, Proposed: 2}, connect.CodeFailedPrecondition, "refusing to move the state backwards"},
		{"not managed", &notManagedError{stack: "web"}, connect.CodeFailedPrecondition, "stack web does not use managed state"},
		{"state too large", fmt.Errorf("import_state: %w", &statebackend.TooLargeError{What: "state file", Size: 2048, Max: 1024}), connect.CodeInvalidArgument, "import_state: state file too large: 2.0 KiB is more than the limit of 1.0 KiB"},
		{"not a state", fmt.Errorf("import_state: %w", &statebackend.InvalidStateError{Problem: `no "lineage" field`}), connect.CodeInvalidArgument, `import_state: not a Terraform state file: no "lineage" field`},
		{"corrupt", fmt.Errorf("state version 2 (%s): %w", secret, statebackend.ErrCorrupt), connect.CodeDataLoss, "does not match its recorded checksum (ref "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			err := connectError(slog.New(slog.NewJSONHandler(&logs, nil)), tt.err)
			var cerr *connect.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("connectError(%v) = %v, not a *connect.Error", tt.err, err)
			}
			if cerr.Code() != tt.code {
				t.Errorf("code %v, want %v", cerr.Code(), tt.code)
			}
			if !strings.Contains(cerr.Message(), tt.contains) {
				t.Errorf("message %q does not contain %q", cerr.Message(), tt.contains)
			}
			if strings.Contains(cerr.Message(), "hunter2") {
				t.Errorf("message %q leaks the error's detail", cerr.Message())
			}
		})
	}
}

func TestConnectErrorLogsInternalDetailWithRef(t *testing.T) {
	var logs syncBuffer
	err := connectError(slog.New(slog.NewJSONHandler(&logs, nil)), errors.New("relation \"events\" does not exist"))
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("not a *connect.Error: %v", err)
	}
	ref := strings.TrimSuffix(strings.TrimPrefix(cerr.Message(), "internal error (ref "), ")")
	if ref == cerr.Message() || ref == "" {
		t.Fatalf("message %q carries no ref", cerr.Message())
	}
	if got := logs.String(); !strings.Contains(got, ref) || !strings.Contains(got, `relation \"events\" does not exist`) {
		t.Errorf("log %q lacks the ref %q or the detail", got, ref)
	}
}

func TestConnectErrorNil(t *testing.T) {
	if err := connectError(slog.New(slog.DiscardHandler), nil); err != nil {
		t.Errorf("connectError(nil) = %v", err)
	}
}
