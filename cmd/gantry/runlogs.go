package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newRunLogsCommand(g *globalOptions) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs RUN",
		Short: "Print a run's log",
		Long: `Print a run's log, line by line as the worker printed it (secrets masked).
With --follow, keep printing new lines until the run ends. With -o json, each
line is a JSON object {"phase": …, "text": …}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd.Context(), g, args[0], follow, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing new lines until the run ends")
	return cmd
}

// logLine is the JSON shape of one line of gantry run logs -o json.
type logLine struct {
	Phase string `json:"phase"`
	Text  string `json:"text"`
}

func runLogs(ctx context.Context, g *globalOptions, runID string, follow bool, w io.Writer) error {
	client, err := g.runClient()
	if err != nil {
		return err
	}
	stream, err := client.StreamRunLogs(ctx, connect.NewRequest(&gantryv1.StreamRunLogsRequest{Run: runID, Follow: follow}))
	if err != nil {
		return endOfLogs(ctx, follow, err)
	}
	defer stream.Close()
	out := bufio.NewWriter(w)
	for stream.Receive() {
		for _, l := range stream.Msg().GetLines() {
			if g.output == outputJSON {
				data, err := json.Marshal(logLine{Phase: l.GetPhase(), Text: l.GetText()})
				if err != nil {
					return fmt.Errorf("run logs: %w", err)
				}
				_, err = out.Write(append(data, '\n'))
				if err != nil {
					return fmt.Errorf("run logs: write: %w", err)
				}
			} else if _, err := out.WriteString(l.GetText() + "\n"); err != nil {
				return fmt.Errorf("run logs: write: %w", err)
			}
		}
		if follow || out.Buffered() > 64<<10 {
			if err := out.Flush(); err != nil {
				return fmt.Errorf("run logs: write: %w", err)
			}
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("run logs: write: %w", err)
	}
	return endOfLogs(ctx, follow, stream.Err())
}

// endOfLogs: an interrupt is how a follow may end, so it is not an error there.
func endOfLogs(ctx context.Context, follow bool, err error) error {
	switch {
	case err == nil:
		return nil
	case follow && ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return nil
	default:
		return fmt.Errorf("run logs: %w", err)
	}
}

// waitRecheck is how often --wait reads the run again without an event: the run view is a
// read model, which may catch up a moment after the event that woke the wait.
const waitRecheck = 2 * time.Second

// waitForRun waits until run runID is terminal or UNCONFIRMED and returns it. It follows the
// run's events and reads the run again when one commits.
func waitForRun(ctx context.Context, g *globalOptions, runID string) (*gantryv1.Run, error) {
	runs, err := g.runClient()
	if err != nil {
		return nil, err
	}
	events, err := g.eventClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := events.Stream(ctx, connect.NewRequest(&gantryv1.StreamRequest{StreamId: runID, Follow: true}))
	if err != nil {
		return nil, fmt.Errorf("wait for run %s: follow its events: %w", runID, err)
	}
	defer stream.Close()
	woken := make(chan struct{}, 1)
	ended := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		for stream.Receive() {
			select {
			case woken <- struct{}{}:
			default:
			}
		}
		ended <- stream.Err()
	})
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for run %s: %w", runID, ctx.Err())
		case err := <-ended:
			if err == nil {
				err = errors.New("the event stream ended")
			}
			return nil, fmt.Errorf("wait for run %s: follow its events: %w", runID, err)
		case <-woken:
		case <-timer.C:
		}
		resp, err := runs.GetRun(ctx, connect.NewRequest(&gantryv1.GetRunRequest{Run: runID}))
		if err != nil {
			return nil, fmt.Errorf("wait for run %s: %w", runID, err)
		}
		if r := resp.Msg.GetRun(); runSettled(r.GetState()) {
			return r, nil
		}
		timer.Reset(waitRecheck)
	}
}

// runSettled reports whether a run waits for nothing but a person: it is terminal or
// UNCONFIRMED.
func runSettled(s gantryv1.RunState) bool {
	switch s {
	case gantryv1.RunState_RUN_STATE_UNCONFIRMED, gantryv1.RunState_RUN_STATE_FINISHED, gantryv1.RunState_RUN_STATE_FAILED,
		gantryv1.RunState_RUN_STATE_DISCARDED, gantryv1.RunState_RUN_STATE_STOPPED, gantryv1.RunState_RUN_STATE_CANCELED,
		gantryv1.RunState_RUN_STATE_SKIPPED:
		return true
	}
	return false
}

// waitAndPrint waits for the run, prints it, and fails if it did not end well.
func waitAndPrint(ctx context.Context, g *globalOptions, w io.Writer, runID string) error {
	r, err := waitForRun(ctx, g, runID)
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
