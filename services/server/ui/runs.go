package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/domain/run"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// maxLogLines bounds the log lines a run's page renders; the rest is
// left to `gantry run logs`.
const maxLogLines = 20000

// runStateName is a run state as the CLI prints it ("UNCONFIRMED").
func runStateName(s gantryv1.RunState) string {
	return strings.TrimPrefix(s.String(), "RUN_STATE_")
}

func runTypeName(t gantryv1.RunType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "RUN_TYPE_"))
}

// terminal reports whether a run in state s has ended, as the domain says.
func terminal(s gantryv1.RunState) bool { return run.Status(runStateName(s)).Terminal() }

// runActions are the actions of a run's page: the state each is allowed in
// (as the run aggregate decides) and the procedure it calls.
var runActions = []struct {
	Name, Label, Procedure string
	allowed                func(gantryv1.RunState) bool
}{
	{"confirm", "Confirm", "RunService/ConfirmRun", func(s gantryv1.RunState) bool { return s == gantryv1.RunState_RUN_STATE_UNCONFIRMED }},
	{"discard", "Discard", "RunService/DiscardRun", func(s gantryv1.RunState) bool {
		return s == gantryv1.RunState_RUN_STATE_UNCONFIRMED || s == gantryv1.RunState_RUN_STATE_QUEUED || s == gantryv1.RunState_RUN_STATE_READY
	}},
	{"stop", "Stop", "RunService/StopRun", func(s gantryv1.RunState) bool {
		switch s {
		case gantryv1.RunState_RUN_STATE_PREPARING, gantryv1.RunState_RUN_STATE_INITIALIZING, gantryv1.RunState_RUN_STATE_PLANNING, gantryv1.RunState_RUN_STATE_PERFORMING:
			return true
		}
		return false
	}},
	{"cancel", "Cancel", "RunService/CancelRun", func(s gantryv1.RunState) bool {
		return s == gantryv1.RunState_RUN_STATE_QUEUED || s == gantryv1.RunState_RUN_STATE_READY
	}},
}

type runAction struct{ Name, Label, Procedure string }

type logLine struct {
	Phase    string
	Segments []segment
}

type runData struct {
	Run       *gantryv1.Run
	StackName string
	Actions   []runAction
	Logs      []logLine
	// LogCount is how many lines the log had when the page was made; the
	// live stream starts after them.
	LogCount  int
	Truncated bool
	Live      bool
}

func (u *UI) runPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	res, err := u.c.runs.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: r.PathValue("run")}))
	if err != nil {
		u.fail(w, r, "read the run", err)
		return
	}
	run := res.Msg.GetRun()
	d := runData{Run: run, StackName: run.GetStackId()}
	if st, err := u.c.stacks.GetStack(ctx, connect.NewRequest(&gantryv1.GetStackRequest{Stack: run.GetStackId()})); err == nil {
		d.StackName = st.Msg.GetStack().GetName()
	}
	for _, a := range runActions {
		if a.allowed(run.GetState()) {
			d.Actions = append(d.Actions, runAction{a.Name, a.Label, a.Procedure})
		}
	}
	stream, err := u.c.runs.StreamRunLogs(ctx, connect.NewRequest(&gantryv1.StreamRunLogsRequest{Run: run.GetId()}))
	if err != nil {
		u.fail(w, r, "read the run's logs", err)
		return
	}
	for stream.Receive() {
		for _, l := range stream.Msg().GetLines() {
			d.LogCount++
			if len(d.Logs) < maxLogLines {
				d.Logs = append(d.Logs, logLine{Phase: l.GetPhase(), Segments: ansiSegments(l.GetText())})
			} else {
				d.Truncated = true
			}
		}
	}
	if err := stream.Err(); err != nil {
		u.fail(w, r, "read the run's logs", err)
		return
	}
	_ = stream.Close()
	d.Live = !terminal(run.GetState()) && run.GetState() != gantryv1.RunState_RUN_STATE_UNCONFIRMED
	u.render(w, r, http.StatusOK, "run", page{Title: "Run " + run.GetId(), Notice: notice(r.URL.Query().Get("done")), Data: d})
}

// runAction confirms, discards, stops or cancels a run.
func (u *UI) runAction(w http.ResponseWriter, r *http.Request) {
	id, note := r.PathValue("run"), strings.TrimSpace(r.PostForm.Get("note"))
	u.act(w, r, "run", "/runs/"+url.PathEscape(id),
		action{"confirm", "confirm", rpc(u.c.runs.ConfirmRun, &gantryv1.ConfirmRunRequest{Run: id})},
		action{"discard", "discard", rpc(u.c.runs.DiscardRun, &gantryv1.DiscardRunRequest{Run: id, Note: note})},
		action{"stop", "stop", rpc(u.c.runs.StopRun, &gantryv1.StopRunRequest{Run: id, Note: note})},
		action{"cancel", "cancel", rpc(u.c.runs.CancelRun, &gantryv1.CancelRunRequest{Run: id, Note: note})})
}

// statePoll is how often a run's live stream checks the run's state.
const statePoll = time.Second

// runLogsEvents relays a run's live log (RunService.StreamRunLogs with
// follow) as Server-Sent Events: "line" events (the phase and the ANSI
// segments, JSON) after the first ?after lines, "state" events when the
// run's state changes, and one "end" event when the stream ends (the run
// ended or waits for a confirmation).
func (u *UI) runLogsEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("run")
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stream, err := u.c.runs.StreamRunLogs(ctx, connect.NewRequest(&gantryv1.StreamRunLogsRequest{Run: id, Follow: true, StopAtUnconfirmed: true}))
	if err != nil {
		http.Error(w, "the run's logs cannot be followed: "+err.Error(), http.StatusBadGateway)
		return
	}
	lines := make(chan *gantryv1.RunLogLine, 64)
	ended := make(chan error, 1)
	done := make(chan struct{})
	// On the way out: end the call, wait for its reader, then close it.
	defer func() {
		cancel()
		<-done
		_ = stream.Close()
	}()
	go func() {
		defer close(done)
		defer close(lines)
		for stream.Receive() {
			for _, l := range stream.Msg().GetLines() {
				select {
				case lines <- l:
				case <-ctx.Done():
					return
				}
			}
		}
		ended <- stream.Err()
	}()
	sse, ok := startEvents(w)
	if !ok {
		return
	}
	tick := time.NewTicker(statePoll)
	defer tick.Stop()
	last := ""
	n := 0
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				var err error
				select {
				case err = <-ended:
				default:
				}
				state := u.runState(ctx, id)
				if err != nil && !errors.Is(err, context.Canceled) {
					u.log.WarnContext(ctx, "ui: run log stream ended", "run_id", id, "err", err.Error())
				}
				_ = sse.send("end", state)
				return
			}
			n++
			if n <= after {
				continue
			}
			b, _ := json.Marshal(struct {
				Phase    string    `json:"phase"`
				Segments []segment `json:"segments"`
			}{l.GetPhase(), ansiSegments(l.GetText())})
			if sse.send("line", string(b)) != nil {
				return
			}
		case <-tick.C:
			if s := u.runState(ctx, id); s != "" && s != last {
				last = s
				if sse.send("state", s) != nil {
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func (u *UI) runState(ctx context.Context, id string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	res, err := u.c.runs.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: id}))
	if err != nil {
		return ""
	}
	return runStateName(res.Msg.GetRun().GetState())
}

// eventWriter writes Server-Sent Events.
type eventWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func startEvents(w http.ResponseWriter) (*eventWriter, bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return nil, false
	}
	return &eventWriter{w: w, rc: rc}, true
}

// send writes one event; data must not hold a newline (JSON and state
// names do not).
func (e *eventWriter) send(event, data string) error {
	data = strings.NewReplacer("\n", " ", "\r", " ").Replace(data)
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	return e.rc.Flush()
}
