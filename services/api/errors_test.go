package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/eventstore"
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
