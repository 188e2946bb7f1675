// Package eventstore is Gantry's PostgreSQL event store: append with optimistic
// concurrency, load a stream, read every event in commit order, and relay
// committed events to NATS JetStream.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Expected-version sentinels for Append. Any value >= 0 is an exact version;
// NoStream (0) means the stream must not exist yet.
const (
	// Any appends whatever the stream's current version is.
	Any int64 = -1
	// NoStream requires that the stream has no events yet.
	NoStream int64 = 0
)

// Stream names one event stream: the aggregate type and its id.
type Stream struct {
	Type string // e.g. "run"; lower case letters, digits and '_'
	ID   string // e.g. "run_01J…"; letters, digits, '_' and '-'
}

func (s Stream) String() string { return s.Type + "/" + s.ID }

var (
	streamTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	streamIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

// Validate reports whether the stream can be stored and used in a NATS
// subject (no dots, spaces or wildcards).
func (s Stream) Validate() error {
	var errs []error
	if s.ID == "" {
		errs = append(errs, errors.New("stream id: must not be empty"))
	} else if !streamIDPattern.MatchString(s.ID) {
		errs = append(errs, fmt.Errorf("stream id %q: use 1-128 letters, digits, '_' or '-'", s.ID))
	}
	if s.Type == "" {
		errs = append(errs, errors.New("stream type: must not be empty"))
	} else if !streamTypePattern.MatchString(s.Type) {
		errs = append(errs, fmt.Errorf("stream type %q: use a lower-case letter then up to 31 lower-case letters, digits or '_'", s.Type))
	}
	return errors.Join(errs...)
}

// Metadata travels with every event: who caused it and why.
type Metadata struct {
	Actor         string `json:"actor,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// TraceID and SpanID name the span the event was appended under (hex,
	// as W3C trace context writes them), when that span was sampled: the
	// relay and the scheduler continue the trace from there.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
}

// SpanContext returns the span the event was appended under, as a remote
// parent; it is not valid when the event carries no trace.
func (m Metadata) SpanContext() trace.SpanContext {
	if m.TraceID == "" || m.SpanID == "" {
		return trace.SpanContext{}
	}
	tid, err := trace.TraceIDFromHex(m.TraceID)
	if err != nil {
		return trace.SpanContext{}
	}
	sid, err := trace.SpanIDFromHex(m.SpanID)
	if err != nil {
		return trace.SpanContext{}
	}
	// Only sampled spans are recorded in events.
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// withSpan returns m naming the span of ctx when that span is sampled.
func (m Metadata) withSpan(ctx context.Context) Metadata {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		m.TraceID, m.SpanID = sc.TraceID().String(), sc.SpanID().String()
	}
	return m
}

type metadataKey struct{}

// WithMetadata returns a context whose appends carry md.
func WithMetadata(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md)
}

// MetadataFrom returns the metadata set by WithMetadata, or the zero value.
func MetadataFrom(ctx context.Context) Metadata {
	md, _ := ctx.Value(metadataKey{}).(Metadata)
	return md
}

// Cursor is a place in the commit order of all events. Events are read in
// (Tx, Position) order: Tx is the id of the transaction that appended the
// event, and no transaction with a smaller id can still commit once a reader
// has seen a larger one. The zero Cursor is before every event.
type Cursor struct {
	Tx       int64 `json:"tx"`
	Position int64 `json:"position"`
}

// Before reports whether c sorts strictly before o in commit order.
func (c Cursor) Before(o Cursor) bool {
	if c.Tx != o.Tx {
		return c.Tx < o.Tx
	}
	return c.Position < o.Position
}

// Event is one stored event, as read back from the store.
type Event struct {
	ID            string          `json:"id"`
	Position      int64           `json:"position"`
	Tx            int64           `json:"tx"`
	StreamID      string          `json:"stream_id"`
	StreamType    string          `json:"stream_type"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Payload       json.RawMessage `json:"payload"`
	Metadata      Metadata        `json:"metadata"`
	Time          time.Time       `json:"time"`
}

// Cursor returns the event's place in the commit order.
func (e Event) Cursor() Cursor { return Cursor{Tx: e.Tx, Position: e.Position} }

// Stream returns the stream the event belongs to.
func (e Event) Stream() Stream { return Stream{Type: e.StreamType, ID: e.StreamID} }

// Filter narrows a read of all events. Empty fields match everything.
type Filter struct {
	StreamID   string
	StreamType string
	EventType  string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Event) bool {
	return (f.StreamID == "" || f.StreamID == e.StreamID) &&
		(f.StreamType == "" || f.StreamType == e.StreamType) &&
		(f.EventType == "" || f.EventType == e.Type)
}

// ErrConflict is matched (errors.Is) by every *ConflictError.
var ErrConflict = errors.New("version conflict")

// ConflictError says an append's expected version did not match the stream.
type ConflictError struct {
	Stream   Stream
	Expected int64
	Actual   int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("append %s: expected version %d, stream is at %d: %v", e.Stream, e.Expected, e.Actual, ErrConflict)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ErrUnknownEventType is matched by errors for event types the registry does
// not know, on append and on decode.
var ErrUnknownEventType = errors.New("unknown event type")

// ErrInvalidEvent is matched by errors for events that cannot be appended.
var ErrInvalidEvent = errors.New("invalid event")

// ErrNotFound is returned when a position names no event.
var ErrNotFound = errors.New("not found")
