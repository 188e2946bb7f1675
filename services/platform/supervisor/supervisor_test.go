package supervisor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gantryhq/gantry/services/platform/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// step is how one run of a scripted component behaves.
type step func(ctx context.Context) error

var errBroken = errors.New("broken")

func fail(context.Context) error { return errBroken }

func returnEarly(context.Context) error { return nil }

func panics(context.Context) error { panic("boom") }

func failPermanently(context.Context) error { return supervisor.Permanent(errBroken) }

// runFor runs for d, then fails.
func runFor(d time.Duration) step {
	return func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
			return errBroken
		}
	}
}

// script is a component whose runs follow steps in turn; after them, every
// run behaves as then (default: work until stopped, closing steady).
type script struct {
	steps  []step
	then   step
	runs   atomic.Int32
	steady chan struct{}
	once   sync.Once
}

func (s *script) run(ctx context.Context) error {
	n := int(s.runs.Add(1))
	if n <= len(s.steps) {
		return s.steps[n-1](ctx)
	}
	if s.then != nil {
		return s.then(ctx)
	}
	s.once.Do(func() { close(s.steady) })
	<-ctx.Done()
	return nil
}

// logs collects the supervisor's JSON log lines.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// failures counts the error lines about component name.
func (l *logs) failures(t *testing.T, name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "ERROR" && rec["component"] == name {
			n++
		}
	}
	return n
}

func TestRun(t *testing.T) {
	const window = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []step
		then  step
		// wantErr is a part of Run's error; "" when Run must go on until
		// it is stopped.
		wantErr string
		// wantRuns is how many times the component ran (at least, when
		// then fails forever); wantLogged how many failures were logged.
		wantRuns, wantLogged int
	}{
		{name: "runs until stopped", wantRuns: 1},
		{name: "restarted after errors", steps: []step{fail, fail}, wantRuns: 3, wantLogged: 2},
		{name: "returning early is a failure", steps: []step{returnEarly}, wantRuns: 2, wantLogged: 1},
		{name: "a panic is a failure", steps: []step{panics}, wantRuns: 2, wantLogged: 1},
		{name: "restarted after failing once started", steps: []step{runFor(2 * window), fail}, wantRuns: 3, wantLogged: 2},
		{name: "a permanent error stops the process", steps: []step{fail, failPermanently},
			wantErr: "flaky cannot start: broken", wantRuns: 2, wantLogged: 2},
		{name: "a permanent error once started stops the process", steps: []step{runFor(2 * window), failPermanently},
			wantErr: "flaky failed: broken", wantRuns: 2, wantLogged: 2},
		{name: "failing through the start window stops the process", then: fail,
			wantErr: "flaky cannot start: failed", wantRuns: 3, wantLogged: 3},
		{name: "failing right after each start stops the process", then: runFor(window / 3),
			wantErr: "flaky cannot start: failed", wantRuns: 2, wantLogged: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var l logs
			flaky := &script{steps: tc.steps, then: tc.then, steady: make(chan struct{})}
			bystander := &script{steady: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- supervisor.Run(ctx, supervisor.Config{
					Logger:      slog.New(slog.NewJSONHandler(&l, nil)),
					StartWindow: window, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
				}, supervisor.Component{Name: "flaky", Run: flaky.run}, supervisor.Component{Name: "bystander", Run: bystander.run})
			}()
			var err error
			if tc.wantErr == "" {
				select {
				case <-flaky.steady:
				case err = <-done:
					t.Fatalf("Run returned %v before it was stopped", err)
				case <-time.After(10 * time.Second):
					t.Fatal("the component never ran steadily")
				}
				cancel()
				err = <-done
			} else {
				// Run must stop on its own, the bystander with it.
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("Run did not stop the process")
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Run: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Run: %v, want an error with %q", err, tc.wantErr)
			case tc.wantErr != "" && !errors.Is(err, errBroken):
				t.Errorf("Run: %v does not wrap the component's error", err)
			}
			runs := int(flaky.runs.Load())
			if runs < tc.wantRuns || tc.then == nil && runs != tc.wantRuns {
				t.Errorf("ran %d times, want %d", runs, tc.wantRuns)
			}
			if got := l.failures(t, "flaky"); got < tc.wantLogged || tc.then == nil && got != tc.wantLogged {
				t.Errorf("%d failures logged with component=flaky, want %d:\n%s", got, tc.wantLogged, l.buf.String())
			}
			if n := bystander.runs.Load(); n != 1 {
				t.Errorf("the bystander ran %d times, want 1", n)
			}
			if n := l.failures(t, "bystander"); n != 0 {
				t.Errorf("%d failures logged for the bystander", n)
			}
		})
	}
}

func TestRunRejectsBadComponentsAndConfig(t *testing.T) {
	run := func(ctx context.Context) error { <-ctx.Done(); return nil }
	for _, tc := range []struct {
		name       string
		cfg        supervisor.Config
		components []supervisor.Component
		want       []string
	}{
		{name: "no name", components: []supervisor.Component{{Run: run}}, want: []string{"component 0 has no name"}},
		{name: "no run", components: []supervisor.Component{{Name: "a"}}, want: []string{`component "a" has no Run`}},
		{name: "twice", components: []supervisor.Component{{Name: "a", Run: run}, {Name: "a", Run: run}},
			want: []string{"component a is there twice"}},
		{name: "bad config", cfg: supervisor.Config{StartWindow: -1, MinBackoff: time.Second, MaxBackoff: time.Millisecond},
			components: []supervisor.Component{{Name: "a", Run: run}},
			want:       []string{"start window -1ns: must not be negative", "max backoff 1ms is below min backoff 1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A live context: Run must refuse at once, without running anything.
			err := supervisor.Run(context.Background(), tc.cfg, tc.components...)
			if err == nil {
				t.Fatal("Run accepted them")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
