package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	domainrun "github.com/gantryhq/gantry/domain/run"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newRunLogsCommand(g *globalOptions) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs RUN",
		Short: "Print a run's log",
		Long: `Print a run's log, line by line as the worker printed it (secrets masked).
With --follow, keep printing new lines until the run ends, or until it waits
for a confirmation, which is then said on stderr with the command that gives
it. With -o json, each line is a JSON object {"phase": …, "text": …}.

Colour codes (terraform's) reach only a terminal: a pipe or a file gets plain
text, and so does every output when NO_COLOR is set.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd.Context(), g, args[0], follow, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing new lines until the run ends or waits for a confirmation")
	return cmd
}

// logLine is the JSON shape of one line of gantry run logs -o json.
type logLine struct {
	Phase string `json:"phase"`
	Text  string `json:"text"`
}

func runLogs(ctx context.Context, g *globalOptions, runID string, follow bool, w, stderr io.Writer) error {
	client, err := g.runClient()
	if err != nil {
		return err
	}
	stream, err := client.StreamRunLogs(ctx, connect.NewRequest(&gantryv1.StreamRunLogsRequest{Run: runID, Follow: follow, StopAtUnconfirmed: follow}))
	if err != nil {
		return endOfLogs(ctx, follow, err)
	}
	defer stream.Close()
	plain := !colorAllowed(w, g.noColor)
	out := bufio.NewWriter(w)
	for stream.Receive() {
		for _, l := range stream.Msg().GetLines() {
			text := l.GetText()
			if plain {
				text = stripANSI(text)
			}
			if g.output == outputJSON {
				data, err := json.Marshal(logLine{Phase: l.GetPhase(), Text: text})
				if err != nil {
					return fmt.Errorf("run logs: %w", err)
				}
				_, err = out.Write(append(data, '\n'))
				if err != nil {
					return fmt.Errorf("run logs: write: %w", err)
				}
			} else if _, err := out.WriteString(text + "\n"); err != nil {
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
	if err := endOfLogs(ctx, follow, stream.Err()); err != nil || !follow || ctx.Err() != nil {
		return err
	}
	return sayIfUnconfirmed(ctx, g, runID, stderr)
}

// sayIfUnconfirmed tells a follower whose log ended without the run's end
// that the run waits for a confirmation, and how to give it. The run's
// status comes from its events, which the read model may lag behind.
func sayIfUnconfirmed(ctx context.Context, g *globalOptions, runID string, stderr io.Writer) error {
	st, err := runFromEvents(ctx, g, runID)
	if err != nil {
		return fmt.Errorf("run logs: %w", err)
	}
	if st.Status() == domainrun.Unconfirmed {
		fmt.Fprintf(stderr, "gantry: run %s waits for a confirmation: gantry run confirm %s (or gantry run discard %s)\n", runID, runID, runID)
	}
	return nil
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
