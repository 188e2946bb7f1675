package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	domainrun "github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

// logsDrainTimeout bounds the wait for the rest of a run's log once the run
// reached what --wait waits for: the server ends the stream as soon as it
// has sent every line, so only a server that cannot (an older one, at
// UNCONFIRMED) takes this long.
const logsDrainTimeout = 10 * time.Second

// waitOptions says what a --wait waits for and what it shows meanwhile.
type waitOptions struct {
	// untilUnconfirmed ends the wait when the run waits for a confirmation
	// too (trigger, task); after a confirm only the run's end does.
	untilUnconfirmed bool
	// from is the status the progress starts at, elapsed times counting
	// from the run's entry into it: what came before is not news (QUEUED
	// after a trigger, CONFIRMED after a confirm).
	from domainrun.Status
	// logs picks the phases whose output is streamed; nil streams none.
	logs func(phase string) bool
}

// settled reports whether the wait is over for a run in st.
func (o waitOptions) settled(st domainrun.Status) bool {
	return st.Terminal() || (o.untilUnconfirmed && st == domainrun.Unconfirmed)
}

// allPhases streams the output of every phase (--logs).
func allPhases(string) bool { return true }

// onlyPhases streams the output of the given phases.
func onlyPhases(phases ...domainrun.Phase) func(string) bool {
	return func(p string) bool {
		for _, want := range phases {
			if p == string(want) {
				return true
			}
		}
		return false
	}
}

// waitAndPrint waits for the run (see waitForRun), showing its progress on
// stderr, prints it on w as -o asks, and fails if it did not end well.
func waitAndPrint(ctx context.Context, g *globalOptions, w, stderr io.Writer, runID string, opts waitOptions) error {
	r, err := waitForRun(ctx, g, runID, opts, newProgress(stderr, g.noColor, runID))
	if err != nil {
		return err
	}
	if err := g.printRun(w, r); err != nil {
		return err
	}
	switch s := r.GetState(); s {
	case gantryv1.RunState_RUN_STATE_FAILED, gantryv1.RunState_RUN_STATE_STOPPED,
		gantryv1.RunState_RUN_STATE_CANCELED, gantryv1.RunState_RUN_STATE_DISCARDED:
		return fmt.Errorf("run %s ended %s", runID, runStateName(s))
	}
	return nil
}

// waitForRun follows the run's events until it reaches what opts waits for
// and returns the run as of that event. It decides from the events
// themselves, folded by the run aggregate's own Apply, and never polls: the
// event that settles the run is the one it returns on, and the run is then
// read with that event as GetRun's min_cursor, so the read model cannot show
// it an older state. Each status change goes to p as it arrives, with the
// phases' output when opts asks for it.
func waitForRun(ctx context.Context, g *globalOptions, runID string, opts waitOptions, p *progress) (*gantryv1.Run, error) {
	runs, err := g.runClient()
	if err != nil {
		return nil, err
	}
	events, err := g.eventClient()
	if err != nil {
		return nil, err
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var logsDone chan struct{} // closed when the log's follower ended, with logsErr
	var logsErr error
	defer func() {
		// Whatever ended the wait, the log's follower ends with it.
		cancel()
		if logsDone != nil {
			<-logsDone
		}
	}()
	// The log is followed from the wait's first state line on, so that what
	// came before it (a plan before the confirmation) does not come first.
	started := func() {
		if opts.logs != nil && logsDone == nil {
			logsDone = make(chan struct{})
			go func() {
				defer close(logsDone)
				logsErr = followLogs(ctx, g, runID, opts, p)
			}()
		}
	}
	settledAt, err := followRunEvents(ctx, events, reg, runID, opts, p, started)
	if err != nil {
		return nil, err
	}
	if logsDone != nil {
		drain := time.NewTimer(logsDrainTimeout)
		select {
		case <-logsDone:
			if logsErr != nil && ctx.Err() == nil {
				p.warn(fmt.Sprintf("could not follow the run's log: %v (gantry run logs %s shows it)", logsErr, runID))
			}
		case <-drain.C:
			p.warn(fmt.Sprintf("the run's log did not end with the run; gantry run logs %s shows it", runID))
		case <-ctx.Done():
		}
		drain.Stop()
	}
	resp, err := runs.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: runID, MinCursor: settledAt}))
	if err != nil {
		return nil, fmt.Errorf("wait for run %s: %w", runID, err)
	}
	return resp.Msg.GetRun(), nil
}

// followRunEvents reads the run's events from its first one, following new
// ones as they commit, until the run is settled for opts; it returns the
// cursor of the event that settled it. started is called when the run is
// seen entering opts.from, before its line is shown.
func followRunEvents(ctx context.Context, events gantryv1connect.EventServiceClient, reg *eventstore.Registry, runID string,
	opts waitOptions, p *progress, started func()) (*gantryv1.EventCursor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := events.Stream(ctx, connect.NewRequest(&gantryv1.StreamRequest{StreamId: runID, Follow: true}))
	if err != nil {
		return nil, fmt.Errorf("wait for run %s: follow its events: %w", runID, err)
	}
	defer stream.Close()
	var st domainrun.State
	shown := false
	var start time.Time
	for stream.Receive() {
		e := stream.Msg().GetEvent()
		ev, err := decodeRunEvent(reg, e)
		if err != nil {
			return nil, fmt.Errorf("wait for run %s: %w", runID, err)
		}
		if ev == nil {
			continue
		}
		before := st.Status()
		st.Apply(ev)
		if st.Status() != before {
			h := st.History()
			entered := h[len(h)-1]
			if !shown && entered.Status == opts.from {
				shown, start = true, entered.At
				started()
			}
			if shown {
				p.state(st, entered, entered.At.Sub(start))
			}
		}
		if opts.settled(st.Status()) {
			return &gantryv1.EventCursor{Tx: e.GetTx(), Position: e.GetPosition()}, nil
		}
	}
	err = stream.Err()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("wait for run %s: %w", runID, context.Cause(ctx))
	case err == nil:
		err = errors.New("the event stream ended")
	}
	return nil, fmt.Errorf("wait for run %s: follow its events: %w", runID, err)
}

// runFromEvents folds the run's events committed so far into its state.
func runFromEvents(ctx context.Context, g *globalOptions, runID string) (domainrun.State, error) {
	events, err := g.eventClient()
	if err != nil {
		return domainrun.State{}, err
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		return domainrun.State{}, err
	}
	stream, err := events.Stream(ctx, connect.NewRequest(&gantryv1.StreamRequest{StreamId: runID}))
	if err != nil {
		return domainrun.State{}, fmt.Errorf("read the events of %s: %w", runID, err)
	}
	defer stream.Close()
	var st domainrun.State
	for stream.Receive() {
		ev, err := decodeRunEvent(reg, stream.Msg().GetEvent())
		if err != nil {
			return domainrun.State{}, fmt.Errorf("read the events of %s: %w", runID, err)
		}
		if ev != nil {
			st.Apply(ev)
		}
	}
	if err := stream.Err(); err != nil {
		return domainrun.State{}, fmt.Errorf("read the events of %s: %w", runID, err)
	}
	return st, nil
}

// decodeRunEvent decodes an event of a run's stream into the run's domain
// event; it returns nil for an event this build does not know (a newer
// server's), which cannot change what this build can show.
func decodeRunEvent(reg *eventstore.Registry, e *gantryv1.Event) (domainrun.Event, error) {
	if e == nil {
		return nil, errors.New("the server sent a response without an event")
	}
	if !reg.Known(e.GetType()) {
		return nil, nil
	}
	data, err := reg.Decode(eventstore.Event{
		ID: e.GetId(), Position: e.GetPosition(), Tx: e.GetTx(), StreamID: e.GetStreamId(), StreamType: e.GetStreamType(),
		Version: e.GetVersion(), Type: e.GetType(), SchemaVersion: int(e.GetSchemaVersion()), Payload: []byte(e.GetPayloadJson()),
	})
	if err != nil {
		return nil, err
	}
	ev, ok := data.(domainrun.Event)
	if !ok {
		return nil, fmt.Errorf("event %s at position %d is a %s, not a run event", e.GetId(), e.GetPosition(), e.GetType())
	}
	return ev, nil
}

// followLogs streams the run's log lines that opts picks to p until the
// server ends the stream: when the run has ended, or waits for a
// confirmation if the wait ends there too.
func followLogs(ctx context.Context, g *globalOptions, runID string, opts waitOptions, p *progress) error {
	client, err := g.runClient()
	if err != nil {
		return err
	}
	stream, err := client.StreamRunLogs(ctx, connect.NewRequest(&gantryv1.StreamRunLogsRequest{
		Run: runID, Follow: true, StopAtUnconfirmed: opts.untilUnconfirmed,
	}))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		for _, l := range stream.Msg().GetLines() {
			if opts.logs(l.GetPhase()) {
				p.log(l.GetText())
			}
		}
	}
	return stream.Err()
}

// progress writes what a wait sees to stderr: one line per status change,
// with the time since the wait's first status, and the phases' output. One
// lock keeps the lines of both whole.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	color  bool
	runID  string
	worker string // the worker the last line named
}

func newProgress(w io.Writer, noColor bool, runID string) *progress {
	return &progress{w: w, color: colorAllowed(w, noColor), runID: runID}
}

// stateColors are the SGR codes of the statuses a user most wants to spot.
var stateColors = map[domainrun.Status]string{
	domainrun.Finished: "32", domainrun.Unconfirmed: "33", domainrun.Skipped: "33",
	domainrun.Failed: "31", domainrun.Stopped: "31", domainrun.Canceled: "31", domainrun.Discarded: "31",
}

// state writes the line of the run entering entry's status, elapsed after
// the wait's first status.
func (p *progress) state(st domainrun.State, entry domainrun.HistoryEntry, elapsed time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	detail := entry.Note
	if w := st.WorkerID(); w != "" && w != p.worker {
		detail, p.worker = joinDetail(detail, "on "+w), w
	}
	if plan, ok := st.Plan(); ok && (entry.Status == domainrun.Unconfirmed || entry.Status.Terminal()) {
		detail = joinDetail(detail, "plan: "+plan.String())
	}
	if entry.Status == domainrun.Unconfirmed {
		detail = joinDetail(detail, fmt.Sprintf("confirm with: gantry run confirm %s (or gantry run discard %s)", p.runID, p.runID))
	}
	code := stateColors[entry.Status]
	if code == "" {
		code = "1"
	}
	line := fmt.Sprintf("%7.2fs  %s  %s", elapsed.Seconds(), paint(p.color, code, fmt.Sprintf("%-15s", entry.Status)), detail)
	fmt.Fprintln(p.w, strings.TrimRight(line, " "))
}

// log writes one line of a phase's output, without escape codes unless the
// writer is a terminal that takes colour.
func (p *progress) log(text string) {
	if !p.color {
		text = stripANSI(text)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, text)
}

// warn writes a problem that does not end the wait.
func (p *progress) warn(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, "gantry: warning: "+msg)
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
