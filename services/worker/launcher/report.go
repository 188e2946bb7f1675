package launcher

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/services/platform/tracing"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// Retries of a report the server did not answer, or answered "internal".
const (
	retryFirst = 200 * time.Millisecond
	// retryLongest is the longest pause between two tries: a run waits at
	// most this long after its server, database or NATS came back.
	retryLongest = 5 * time.Second
	// answerTimeout bounds the wait for the answer to one try.
	answerTimeout = 10 * time.Second
)

// ReportError is a report the gateway refused, with its code.
type ReportError struct {
	Kind, Code, Message string
}

func (e *ReportError) Error() string {
	return fmt.Sprintf("%s refused (%s): %s", e.Kind, e.Code, e.Message)
}

// request sends a report of kind with body and decodes the reply into out
// (which may be nil). A refusal is a *ReportError. A report the server does
// not answer (the gateway is restarting, NATS is down, the answer was lost)
// or answers "internal" (its database is down) is sent again, with the same
// report id, backing off up to retryLongest, until ctx ends: the gateway
// answers a repeat as it answered the first, so an outage delays a report
// and never doubles it.
func (l *Launcher) request(ctx context.Context, kind string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return l.send(ctx, protocol.ReportSubject(l.cfg.Token.PoolID, kind), kind, rand.Text(), data, out)
}

// send is request of a report already encoded, with its report id.
func (l *Launcher) send(ctx context.Context, subject, kind, reportID string, data []byte, out any) error {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(protocol.HeaderReportID, reportID)
	tracing.Inject(ctx, m.Header)
	tries := 0
	var last error // why the last try failed
	op := func() (_ struct{}, err error) {
		tries++
		defer func() { last = err }()
		rctx, cancel := context.WithTimeout(ctx, answerTimeout)
		msg, err := l.nc.RequestMsgWithContext(rctx, m)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return struct{}{}, backoff.Permanent(fmt.Errorf("%s: %w", kind, ctx.Err()))
			}
			return struct{}{}, fmt.Errorf("%s not answered: %w", kind, err)
		}
		var r protocol.Reply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			return struct{}{}, backoff.Permanent(fmt.Errorf("%s: malformed reply: %w", kind, err))
		}
		switch {
		case r.OK && out != nil:
			if reply, ok := out.(*protocol.Reply); ok {
				*reply = r // decoded once: a job's reply is the largest message a run gets
				return struct{}{}, nil
			}
			return struct{}{}, backoff.Permanent(json.Unmarshal(msg.Data, out))
		case r.OK:
			return struct{}{}, nil
		case r.Code == protocol.CodeInternal:
			return struct{}{}, &ReportError{Kind: kind, Code: r.Code, Message: r.Error}
		}
		return struct{}{}, backoff.Permanent(&ReportError{Kind: kind, Code: r.Code, Message: r.Error})
	}
	pauses := &backoff.ExponentialBackOff{InitialInterval: retryFirst, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: retryLongest}
	_, err := backoff.Retry(ctx, op, backoff.WithBackOff(pauses), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, pause time.Duration) {
			// The first failure and then every tenth: an outage of minutes
			// logs a few lines, not hundreds.
			if tries == 1 || tries%10 == 0 {
				l.logger().Warn("report not accepted yet, sending it again", "kind", kind, "tries", tries, "next_in", pause.Round(time.Millisecond).String(), "err", err)
			}
		}))
	if err != nil && ctx.Err() != nil && last != nil && !errors.Is(last, ctx.Err()) {
		// The last try's error says why the report was not accepted; the
		// context says why the launcher stopped trying.
		err = fmt.Errorf("%w (gave up: %w)", last, err)
	}
	return err
}

// deliver sends a report that records a result: kept in the worker's
// outbox first, sent until the server answers it or deadline passes, then
// dropped. A launcher that dies meanwhile leaves it for the next one.
func (l *Launcher) deliver(ctx context.Context, o *outbox, kind, runID string, body any, deadline time.Time, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	r := &pendingReport{Kind: kind, ReportID: rand.Text(), WorkerID: o.workerID(), RunID: runID, Body: data, Deadline: deadline}
	if err := o.put(r); err != nil {
		// The report still goes; only a restart before its answer loses it.
		l.logger().Error("could not keep a report on disk", "kind", kind, "run_id", runID, "err", err)
	}
	return l.sendKept(ctx, o, r, out)
}

// sendKept sends a kept report until it is answered or its deadline
// passes, and drops it then.
func (l *Launcher) sendKept(ctx context.Context, o *outbox, r *pendingReport, out any) error {
	ctx, cancel := context.WithDeadline(ctx, r.Deadline)
	defer cancel()
	err := l.send(ctx, protocol.ReportSubject(l.cfg.Token.PoolID, r.Kind), r.Kind, r.ReportID, r.Body, out)
	var refused *ReportError
	switch {
	case err == nil, errors.As(err, &refused) && refused.Code != protocol.CodeInternal:
		o.done(r)
	case time.Now().After(r.Deadline):
		l.logger().Error("report given up: its run's time is over", "kind", r.Kind, "run_id", r.RunID, "err", err)
		o.done(r)
	}
	return err
}
