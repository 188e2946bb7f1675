package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/eventstore"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

type eventsOptions struct {
	from       int64
	streamID   string
	streamType string
	eventType  string
	follow     bool
}

func newEventsCommand(g *globalOptions) *cobra.Command {
	var opts eventsOptions
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print events in commit order as JSON lines, for audit tooling",
		Long: `Print stored events in commit order, one JSON object per line, whatever -o says.

Each line holds position, tx, id, stream_id, stream_type, version, type,
schema_version, payload (the stored JSON), metadata and time (RFC 3339).
With --follow the command keeps printing events as they commit until
interrupted (Ctrl-C), which ends it with exit status 0.`,
		Example: `  gantry events --from 1200 --stream-type run
  gantry events --stream run_01JABC --follow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEvents(cmd.Context(), g, opts, cmd.OutOrStdout())
		},
	}
	flags := cmd.Flags()
	flags.Int64Var(&opts.from, "from", 0, "start at this global position (0: from the beginning)")
	flags.StringVar(&opts.streamID, "stream", "", "only events of this stream id")
	flags.StringVar(&opts.streamType, "stream-type", "", "only events of streams of this type")
	flags.StringVar(&opts.eventType, "type", "", "only events of this event type")
	flags.BoolVar(&opts.follow, "follow", false, "keep printing new events as they commit")
	return cmd
}

func runEvents(ctx context.Context, g *globalOptions, opts eventsOptions, w io.Writer) error {
	if opts.from < 0 {
		return fmt.Errorf("--from %d: must not be negative", opts.from)
	}
	client, err := g.eventClient()
	if err != nil {
		return err
	}
	stream, err := client.Stream(ctx, connect.NewRequest(&gantryv1.StreamRequest{
		FromPosition: opts.from,
		StreamId:     opts.streamID,
		StreamType:   opts.streamType,
		EventType:    opts.eventType,
		Follow:       opts.follow,
	}))
	if err != nil {
		return endOfEvents(ctx, opts, err)
	}
	defer stream.Close()

	out := bufio.NewWriter(w)
	for stream.Receive() {
		line, err := eventJSONLine(stream.Msg().GetEvent())
		if err != nil {
			return err
		}
		if _, err := out.Write(line); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
		// A follower is read live, so each event goes out at once; a
		// catch-up is flushed in bulk.
		if opts.follow || out.Buffered() > 64<<10 {
			if err := out.Flush(); err != nil {
				return fmt.Errorf("write event: %w", err)
			}
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	return endOfEvents(ctx, opts, stream.Err())
}

// endOfEvents decides what the end of a stream means: an interrupt is how a
// follow normally ends, so it is not an error there.
func endOfEvents(ctx context.Context, opts eventsOptions, err error) error {
	switch {
	case err == nil:
		return nil
	case opts.follow && ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return nil
	default:
		return fmt.Errorf("events: %w", err)
	}
}

// eventLine is the JSON shape of one line of gantry events, a stable format
// for audit tooling.
type eventLine struct {
	Position      int64               `json:"position"`
	Tx            int64               `json:"tx"`
	ID            string              `json:"id"`
	StreamID      string              `json:"stream_id"`
	StreamType    string              `json:"stream_type"`
	Version       int64               `json:"version"`
	Type          string              `json:"type"`
	SchemaVersion int32               `json:"schema_version"`
	Payload       json.RawMessage     `json:"payload"`
	Metadata      eventstore.Metadata `json:"metadata"`
	Time          time.Time           `json:"time"`
}

// eventJSONLine renders e as one line of JSON ending in a newline, with the
// payload embedded as JSON rather than as a string.
func eventJSONLine(e *gantryv1.Event) ([]byte, error) {
	if e == nil {
		return nil, errors.New("server sent a response without an event")
	}
	if !json.Valid([]byte(e.GetPayloadJson())) {
		return nil, fmt.Errorf("event at position %d: payload is not valid JSON", e.GetPosition())
	}
	if err := e.GetTime().CheckValid(); err != nil {
		return nil, fmt.Errorf("event at position %d: time: %w", e.GetPosition(), err)
	}
	md := e.GetMetadata()
	line := eventLine{
		Position:      e.GetPosition(),
		Tx:            e.GetTx(),
		ID:            e.GetId(),
		StreamID:      e.GetStreamId(),
		StreamType:    e.GetStreamType(),
		Version:       e.GetVersion(),
		Type:          e.GetType(),
		SchemaVersion: e.GetSchemaVersion(),
		Payload:       json.RawMessage(e.GetPayloadJson()),
		Metadata: eventstore.Metadata{
			Actor:         md.GetActor(),
			CorrelationID: md.GetCorrelationId(),
			CausationID:   md.GetCausationId(),
			TraceID:       md.GetTraceId(),
		},
		Time: e.GetTime().AsTime(),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Audit output keeps payload text such as "<" as stored, not as \u003c.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(line); err != nil {
		return nil, fmt.Errorf("event at position %d: encode: %w", e.GetPosition(), err)
	}
	return buf.Bytes(), nil
}
