package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/platform/seal"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// stateClient sends the states terraform could not store.
var stateClient = &http.Client{Timeout: answerTimeout}

// saveState implements executor.Job.SaveState: it stores the state
// terraform left in errored.tfstate (the server stayed out of reach
// through all of terraform's retries) as the stack's new state version,
// with the phase's own credentials, while the run is still in that phase.
// The state is kept in the worker's outbox meanwhile, and tried again,
// backing off, until the run's reports are given up; if it cannot be
// stored it stays there, and the error says where.
func (r *reporter) saveState(ctx context.Context, phase run.Phase, data []byte) (string, error) {
	kept, err := r.outbox.keepState(r.runID, data)
	if err != nil {
		r.l.logger().Error("could not keep the errored state on disk", "run_id", r.runID, "err", err)
	}
	fail := func(err error) (string, error) {
		if kept == "" {
			return "", fmt.Errorf("the worker could not store errored.tfstate either: %w", err)
		}
		return "", fmt.Errorf("the worker could not store errored.tfstate either (%w); it is kept on the worker at %s", err, kept)
	}
	creds, err := r.stateCredentials(phase)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithDeadline(ctx, r.deadline)
	defer cancel()
	address := strings.TrimRight(r.l.cfg.Token.ServerURL, "/") + tfbackend.StatePath(r.stackID)
	lockID := ""
	tries := 0
	op := func() (struct{}, error) {
		tries++
		if err := completeState(ctx, address, creds, &data); err != nil {
			return struct{}{}, err
		}
		status, body, err := postState(ctx, address, lockID, creds, data)
		switch {
		case err != nil:
			return struct{}{}, err
		case status == http.StatusOK:
			return struct{}{}, nil
		case status == http.StatusLocked && lockID == "":
			// Terraform could not release its lock either: the state is
			// written under that lock, which this run holds.
			var info struct{ ID string }
			if json.Unmarshal(body, &info) != nil || info.ID == "" {
				return struct{}{}, backoff.Permanent(fmt.Errorf("the state is locked by %s", body))
			}
			lockID = info.ID
			return struct{}{}, backoff.RetryAfter(0)
		case status >= 500 || status == http.StatusTooManyRequests:
			return struct{}{}, fmt.Errorf("the state backend answered %d: %s", status, bytes.TrimSpace(body))
		}
		return struct{}{}, backoff.Permanent(fmt.Errorf("the state backend refused it (%d): %s", status, bytes.TrimSpace(body)))
	}
	pauses := &backoff.ExponentialBackOff{InitialInterval: retryFirst, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: retryLongest}
	if _, err := backoff.Retry(ctx, op, backoff.WithBackOff(pauses), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			if tries == 1 || tries%10 == 0 {
				r.l.logger().Warn("errored state not stored yet, trying again", "run_id", r.runID, "tries", tries, "err", err)
			}
		})); err != nil {
		return fail(err)
	}
	if lockID != "" {
		if err := unlockState(ctx, address, lockID, creds); err != nil {
			r.l.logger().Warn("stored the errored state but could not release terraform's lock; the next run takes it over", "run_id", r.runID, "err", err)
		}
	}
	if kept != "" {
		r.outbox.dropState(kept)
	}
	r.l.logger().Info("stored the state terraform could not", "run_id", r.runID, "phase", phase, "tries", tries)
	return "the worker stored errored.tfstate as the stack's new state version", nil
}

// readState implements executor.Job.ReadState: the stack's stored state,
// read with the phase's credentials (nil when none is stored yet).
func (r *reporter) readState(ctx context.Context, phase run.Phase) ([]byte, error) {
	creds, err := r.stateCredentials(phase)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithDeadline(ctx, r.deadline)
	defer cancel()
	address := strings.TrimRight(r.l.cfg.Token.ServerURL, "/") + tfbackend.StatePath(r.stackID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, address, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(creds.Username, creds.Password)
	status, body, err := do(req)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNoContent:
		return nil, nil
	case status == http.StatusOK:
		return body, nil
	}
	return nil, fmt.Errorf("the state backend answered %d: %s", status, bytes.TrimSpace(body))
}

// completeState gives a state without a lineage one: terraform writes
// errored.tfstate without a lineage when it could not read the stored
// state in the first place (its first apply). The stored state's lineage
// (and a serial above its own) continues it; without one, the state starts
// a lineage of its own, as terraform would have.
func completeState(ctx context.Context, address string, c protocol.StateCredentials, data *[]byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(*data, &fields); err != nil {
		return backoff.Permanent(fmt.Errorf("errored.tfstate is not a JSON object: %w", err))
	}
	var lineage string
	_ = json.Unmarshal(fields["lineage"], &lineage)
	if lineage != "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, address, nil)
	if err != nil {
		return backoff.Permanent(err)
	}
	req.SetBasicAuth(c.Username, c.Password)
	status, body, err := do(req)
	switch {
	case err != nil:
		return err
	case status == http.StatusNoContent:
		lineage = uuid.NewString()
	case status == http.StatusOK:
		var stored struct {
			Lineage string `json:"lineage"`
			Serial  int64  `json:"serial"`
		}
		if err := json.Unmarshal(body, &stored); err != nil || stored.Lineage == "" {
			return backoff.Permanent(fmt.Errorf("the stored state has no lineage to continue"))
		}
		var serial int64
		_ = json.Unmarshal(fields["serial"], &serial)
		lineage = stored.Lineage
		fields["serial"], _ = json.Marshal(max(serial, stored.Serial+1))
	default:
		return fmt.Errorf("reading the stored state: the state backend answered %d: %s", status, bytes.TrimSpace(body))
	}
	fields["lineage"], _ = json.Marshal(lineage)
	completed, err := json.Marshal(fields)
	if err != nil {
		return backoff.Permanent(err)
	}
	*data = completed
	return nil
}

// stateCredentials opens the phase's managed-state credentials, once per
// phase.
func (r *reporter) stateCredentials(phase run.Phase) (protocol.StateCredentials, error) {
	if c, ok := r.opened[phase]; ok {
		return c, nil
	}
	sealed := r.credentials[phase]
	if sealed == nil {
		return protocol.StateCredentials{}, fmt.Errorf("no state credentials for %s", phase)
	}
	plain, err := seal.Open(r.l.cfg.PoolKey, sealed)
	if err != nil {
		return protocol.StateCredentials{}, fmt.Errorf("state credentials for %s: %w", phase, err)
	}
	var c protocol.StateCredentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return protocol.StateCredentials{}, fmt.Errorf("state credentials for %s: %w", phase, err)
	}
	r.opened[phase] = c
	return c, nil
}

// postState sends one state write of terraform's http backend protocol.
func postState(ctx context.Context, address, lockID string, c protocol.StateCredentials, data []byte) (int, []byte, error) {
	u := address
	if lockID != "" {
		u += "?ID=" + url.QueryEscape(lockID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return 0, nil, backoff.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.Username, c.Password)
	return do(req)
}

// unlockState releases the lock terraform left.
func unlockState(ctx context.Context, address, lockID string, c protocol.StateCredentials) error {
	body, err := json.Marshal(map[string]string{"ID": lockID})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "UNLOCK", address, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.Username, c.Password)
	status, answer, err := do(req)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("the state backend answered %d: %s", status, bytes.TrimSpace(answer))
	}
	return err
}

func do(req *http.Request) (int, []byte, error) {
	res, err := stateClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, err
	}
	return res.StatusCode, body, nil
}
