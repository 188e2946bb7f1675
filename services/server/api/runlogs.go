package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/gcerrors"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/eventstore/aggregate"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/objstore"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// maxLinesPerMessage bounds the lines one StreamRunLogsResponse carries.
const maxLinesPerMessage = 500

// RunLogsConfig configures RunLogs.
type RunLogsConfig struct {
	// Aggregates loads runs from the event store (never a read model: the phases a run
	// finished decide what is read from the bucket); the process's one aggregate
	// repository. Required.
	Aggregates *aggregate.Repository
	// Objects holds the full logs of finished phases (executor.PhaseLogKey), encrypted at
	// rest. Required.
	Objects *objstore.Store
	// JetStream reads the live lines of bus.RunLogsStream. Required.
	JetStream jetstream.JetStream
	// Changes wakes followers when events were appended, so they see a run end at once. If
	// nil, followers only poll.
	Changes ChangeNotifier
	// PollInterval is how often a follower checks the run without a notification. Default 1 s.
	PollInterval time.Duration
}

func (c *RunLogsConfig) validate() error {
	var errs []error
	if c.Aggregates == nil {
		errs = append(errs, errors.New("aggregates: required"))
	}
	if c.Objects == nil {
		errs = append(errs, errors.New("objects: required"))
	}
	if c.JetStream == nil {
		errs = append(errs, errors.New("jetstream: required"))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll interval %s: must not be negative", c.PollInterval))
	}
	return errors.Join(errs...)
}

// RunLogs reads runs' logs: finished phases from object storage, the others from
// bus.RunLogsStream.
type RunLogs struct {
	cfg RunLogsConfig
}

// NewRunLogs returns the reader of run logs StreamRunLogs uses.
func NewRunLogs(cfg RunLogsConfig) (*RunLogs, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("run logs config: %w", err)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	return &RunLogs{cfg: cfg}, nil
}

// WithLogs makes s serve StreamRunLogs from logs, and returns s.
func (s *RunService) WithLogs(logs *RunLogs) *RunService {
	s.logs = logs
	return s
}

// StreamRunLogs sends a run's log lines in order. See RunLogs.stream.
func (s *RunService) StreamRunLogs(ctx context.Context, req *connect.Request[gantryv1.StreamRunLogsRequest], stream *connect.ServerStream[gantryv1.StreamRunLogsResponse]) error {
	if s.logs == nil {
		return connect.NewError(connect.CodeUnimplemented, errors.New("this server does not serve run logs"))
	}
	if err := s.logs.stream(ctx, s.log, req.Msg.GetRun(), req.Msg.GetFollow(), req.Msg.GetStopAtUnconfirmed(), stream.Send); err != nil {
		return s.fail(err)
	}
	return nil
}

// stream sends first the full log of every phase the run finished, in order, from the bucket,
// then the lines of the other phases from the run's subject of bus.RunLogsStream. A launcher
// stores a phase's full log and has all its lines acknowledged before it reports the phase
// finished, so nothing falls between the two. Without follow it stops at the last line the
// stream held when the call began; with follow, once the run is terminal and every line was
// sent.
func (l *RunLogs) stream(ctx context.Context, log *slog.Logger, runID string, follow, stopAtUnconfirmed bool, send func(*gantryv1.StreamRunLogsResponse) error) error {
	if err := ids.Run.Validate("run", runID); err != nil {
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			return &invalidArgumentError{field: "run", reason: ve.Problem}
		}
		return err
	}
	st, err := l.loadRun(ctx, runID)
	if err != nil {
		return err
	}
	if !st.Exists() {
		return fmt.Errorf("run %s: %w", runID, domain.ErrNotFound)
	}
	out := &lineSender{send: send, ctx: ctx}
	printed := map[run.Phase]bool{}
	for _, res := range st.PhaseResults() {
		if printed[res.Phase] {
			continue
		}
		data, err := l.cfg.Objects.ReadEncrypted(ctx, executor.PhaseLogKey(runID, res.Phase))
		if gcerrors.Code(err) == gcerrors.NotFound {
			// The worker could not store it (lost, killed): whatever the stream has is shown.
			log.Warn("run logs: a finished phase has no stored log", "run_id", runID, "phase", res.Phase)
			continue
		}
		if err != nil {
			return fmt.Errorf("read the %s log of %s: %w", res.Phase, runID, err)
		}
		printed[res.Phase] = true
		for line := range bytes.Lines(data) {
			if err := out.add(string(res.Phase), string(bytes.TrimSuffix(line, []byte("\n")))); err != nil {
				return err
			}
		}
	}
	if err := out.flush(); err != nil {
		return err
	}
	return l.streamLines(ctx, runID, follow, stopAtUnconfirmed, printed, out)
}

// streamLines sends the lines of runID's subject of the run logs stream whose phase is not in
// printed. A follower waits out an outage of NATS or of the database (a restart, an upgrade):
// it reads on from the last line it sent, so no line is missed or sent twice.
func (l *RunLogs) streamLines(ctx context.Context, runID string, follow, stopAtUnconfirmed bool, printed map[run.Phase]bool, out *lineSender) error {
	// Lines of every pool's subject are read; only those of a pool the run
	// was assigned to are shown (a launcher can publish on its own pool's
	// subjects only, so the pool in the subject is authenticated).
	subject := protocol.RunLogsSubject("*", runID)
	pools := map[string]bool{}
	stopping := serverStopping(ctx)
	retry := followerBackoff()
	// again decides what a failure means: the end of the call, or, for a
	// follower, a pause before trying again.
	again := func(err error) error {
		if !follow || ctx.Err() != nil {
			return err
		}
		slog.Default().WarnContext(ctx, "run logs follower: reading failed; trying again", "run_id", runID, "err", err)
		return wait(ctx, nil, stopping, retry.NextBackOff())
	}
	var (
		stream jetstream.Stream
		end    uint64 // the last line to send, once ended
		ended  bool
		err    error
	)
	for {
		if stream, err = l.cfg.JetStream.Stream(ctx, bus.RunLogsStream); err == nil {
			// The end: the last line when the call began, or, following, when the run was seen ended.
			if end, err = lastSequence(ctx, stream, subject); err == nil {
				ended = !follow
				if follow {
					ended, end, err = l.checkEnded(ctx, runID, stopAtUnconfirmed, stream, subject)
				}
			}
		}
		if err == nil {
			break
		}
		if err := again(fmt.Errorf("open stream %s: %w", bus.RunLogsStream, err)); err != nil {
			return err
		}
	}
	retry.Reset()
	if ended && end == 0 {
		return nil
	}
	var delivered uint64
	feed := &lineFeed{stream: stream, subject: subject}
	defer feed.stop()
	take := func(m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read the lines of %s: %w", runID, err)
		}
		pool, _, ok := protocol.ParseRunLogsSubject(m.Subject())
		for ok && !pools[pool] {
			// A pool not seen yet: the run may have been assigned since.
			st, err := l.loadRun(ctx, runID)
			if err != nil {
				if err := again(err); err != nil {
					return err
				}
				continue
			}
			for _, p := range st.AssignedPools() {
				pools[p] = true
			}
			break
		}
		delivered = meta.Sequence.Stream
		if !ok || !pools[pool] {
			slog.Default().WarnContext(ctx, "run logs: a line from a pool the run was never assigned to, dropped",
				"run_id", runID, "subject", m.Subject())
			return nil
		}
		phase := m.Headers().Get(protocol.HeaderPhase)
		if printed[run.Phase(phase)] {
			return nil
		}
		// A message holds one line or several, joined by newlines.
		for line := range strings.SplitSeq(string(m.Data()), "\n") {
			if err := out.add(phase, line); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if !feed.running() {
			if err := feed.start(ctx, delivered); err != nil {
				if err := again(fmt.Errorf("read the lines of %s: %w", runID, err)); err != nil {
					return err
				}
				continue
			}
		}
		if ended && delivered >= end {
			return out.flush()
		}
		var changed <-chan struct{}
		if follow && !ended && l.cfg.Changes != nil {
			changed = l.cfg.Changes.Changed()
		}
		timer := time.NewTimer(l.cfg.PollInterval)
		select {
		case m := <-feed.msgs:
			timer.Stop()
			if err := take(m); err != nil {
				return err
			}
			// Batch what is already there; send as soon as nothing more is.
			for more := true; more && len(out.lines) < maxLinesPerMessage; {
				select {
				case m := <-feed.msgs:
					if err := take(m); err != nil {
						return err
					}
				default:
					more = false
				}
			}
			if err := out.flush(); err != nil {
				return err
			}
			retry.Reset()
			continue
		case err := <-feed.errc:
			timer.Stop()
			feed.stop()
			if err := again(fmt.Errorf("read the lines of %s: %w", runID, err)); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-stopping:
			timer.Stop()
			return errServerStopping
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
		if !ended {
			e, last, err := l.checkEnded(ctx, runID, stopAtUnconfirmed, stream, subject)
			if err != nil {
				if err := again(err); err != nil {
					return err
				}
				continue
			}
			ended, end = e, last
			continue
		}
		// Lines that expired before they were read never come: stop at what is left.
		last, err := lastSequence(ctx, stream, subject)
		if err != nil {
			if err := again(err); err != nil {
				return err
			}
			continue
		}
		end = min(end, last)
	}
}

// lineFeed reads the lines of a subject of the run logs stream, in order, from an ordered
// consumer, onto msgs; a failure of the consumer arrives on errc, after which the feed is
// stopped and may be started again after the last line taken.
type lineFeed struct {
	stream  jetstream.Stream
	subject string
	msgs    chan jetstream.Msg
	errc    chan error
	done    chan struct{}
	it      jetstream.MessagesContext
	wg      sync.WaitGroup
}

// start reads from the line after sequence after (0: from the first).
func (f *lineFeed) start(ctx context.Context, after uint64) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.subject}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := f.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(maxLinesPerMessage))
	if err != nil {
		return err
	}
	f.it, f.msgs, f.errc, f.done = it, make(chan jetstream.Msg), make(chan error, 1), make(chan struct{})
	msgs, errc, done := f.msgs, f.errc, f.done
	f.wg.Go(func() {
		for {
			m, err := it.Next()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-done:
				return
			}
		}
	})
	return nil
}

func (f *lineFeed) running() bool { return f.it != nil }

// stop ends the reading; it may be started again.
func (f *lineFeed) stop() {
	if f.it == nil {
		return
	}
	close(f.done)
	f.it.Stop()
	f.wg.Wait()
	f.it, f.msgs, f.errc = nil, nil, nil
}

// checkEnded reports whether run runID is terminal (or, with stopAtUnconfirmed, UNCONFIRMED)
// and, if so, the sequence of its last line:
// the launcher had every line acknowledged before the run could end.
func (l *RunLogs) checkEnded(ctx context.Context, runID string, stopAtUnconfirmed bool, stream jetstream.Stream, subject string) (bool, uint64, error) {
	st, err := l.loadRun(ctx, runID)
	if err != nil {
		return false, 0, err
	}
	if !st.IsTerminal() && !(stopAtUnconfirmed && st.Status() == run.Unconfirmed) {
		return false, 0, nil
	}
	last, err := lastSequence(ctx, stream, subject)
	return true, last, err
}

// lastSequence returns the stream sequence of the last message on subject, 0 if none.
func lastSequence(ctx context.Context, stream jetstream.Stream, subject string) (uint64, error) {
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find the last line on %s: %w", subject, err)
	}
	return m.Sequence, nil
}

// loadRun returns the run's state; an id that names another kind of aggregate is no run.
func (l *RunLogs) loadRun(ctx context.Context, runID string) (run.State, error) {
	st, err := aggregate.Load(ctx, l.cfg.Aggregates, aggregate.Run, runID)
	if errors.Is(err, aggregate.ErrStreamType) {
		return run.State{}, nil
	}
	return st, err
}

// lineSender batches lines into responses.
type lineSender struct {
	ctx   context.Context
	send  func(*gantryv1.StreamRunLogsResponse) error
	lines []*gantryv1.RunLogLine
}

func (s *lineSender) add(phase, text string) error {
	s.lines = append(s.lines, &gantryv1.RunLogLine{Phase: phase, Text: text})
	if len(s.lines) >= maxLinesPerMessage {
		return s.flush()
	}
	return nil
}

func (s *lineSender) flush() error {
	if len(s.lines) == 0 {
		return nil
	}
	err := s.send(&gantryv1.StreamRunLogsResponse{Lines: s.lines})
	s.lines = nil
	if err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		return fmt.Errorf("send log lines: %w", err)
	}
	return nil
}
