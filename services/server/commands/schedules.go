package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/schedule"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// ScheduleActor is who queues the runs of schedules.
const ScheduleActor = "system:schedule"

// ParseCron parses a standard five-field cron expression (or a descriptor
// such as @hourly; CRON_TZ=Zone may lead), as schedules take it. A bad one
// is a *domain.ValidationError on "cron".
func ParseCron(expr string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, &domain.ValidationError{Field: "cron", Problem: fmt.Sprintf("%q: %v", expr, err)}
	}
	return sched, nil
}

// maxTickSteps bounds the walk of DueTick through missed ticks (a
// once-a-minute schedule missed for two years).
const maxTickSteps = 1 << 20

// DueTick returns the latest tick of sched at or before now and after
// both since (when the cron took effect) and last (the tick fired last),
// or ok false when none is due. However many ticks were missed, only the
// latest is due: a schedule fires once after an outage, not once per tick.
func DueTick(sched cron.Schedule, since, last, now time.Time) (tick time.Time, ok bool) {
	from := since
	if last.After(from) {
		from = last
	}
	for t, i := sched.Next(from), 0; !t.IsZero() && !t.After(now) && i < maxTickSteps; t, i = sched.Next(t), i+1 {
		tick, ok = t, true
	}
	return tick, ok
}

// SetDriftDetection schedules drift detection on a stack: a PROPOSED drift
// run on cron, and with reconcile a TRACKED run after each one that finds
// drift. It returns the schedule's id (one per stack).
func (s *Service) SetDriftDetection(ctx context.Context, c Caller, stackRef, expr string, reconcile bool) (string, error) {
	stackID, err := s.ResolveStack(ctx, stackRef)
	if err != nil {
		return "", err
	}
	return s.setSchedule(ctx, c, schedule.DriftID(stackID), schedule.Set{StackID: stackID, Kind: schedule.Drift, Cron: expr, Reconcile: reconcile})
}

// AddSchedule schedules a TRACKED run or a TASK on a stack and returns the
// new schedule's id.
func (s *Service) AddSchedule(ctx context.Context, c Caller, stackRef string, kind schedule.Kind, expr, taskCommand string) (string, error) {
	if kind == schedule.Drift {
		return "", &domain.ValidationError{Field: "kind", Problem: "set drift detection with SetDriftDetection"}
	}
	stackID, err := s.ResolveStack(ctx, stackRef)
	if err != nil {
		return "", err
	}
	id, err := newID(ids.Schedule)
	if err != nil {
		return "", err
	}
	return s.setSchedule(ctx, c, id, schedule.Set{StackID: stackID, Kind: kind, Cron: expr, TaskCommand: taskCommand})
}

func (s *Service) setSchedule(ctx context.Context, c Caller, id string, set schedule.Set) (string, error) {
	if _, err := ParseCron(set.Cron); err != nil {
		return "", err
	}
	_, err := s.execute(ctx, "set schedule", func(ctx context.Context, u *aggregate.Unit) error {
		stk, err := stackOf(ctx, u, set.StackID)
		if err != nil {
			return err
		}
		if !stk.State().Exists() {
			return fmt.Errorf("stack %s: %w", set.StackID, domain.ErrNotFound)
		}
		a, err := aggregate.Get(ctx, u, aggregate.Schedule, id)
		if err != nil {
			return err
		}
		set.ScheduleID, set.Actor, set.At = id, c.Actor, s.now()
		_, err = a.Do(set)
		return err
	})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "schedule set", "schedule_id", id, "stack_id", set.StackID, "kind", set.Kind, "cron", set.Cron, "actor", c.Actor)
	return id, nil
}

// DeleteSchedule removes a schedule; for a stack's drift detection, id may
// be the stack's id or name.
func (s *Service) DeleteSchedule(ctx context.Context, c Caller, id string) error {
	if ids.Schedule.Validate("schedule", id) != nil {
		stackID, err := s.ResolveStack(ctx, id)
		if err != nil {
			return err
		}
		id = schedule.DriftID(stackID)
	}
	_, err := s.execute(ctx, "delete schedule", func(ctx context.Context, u *aggregate.Unit) error {
		a, err := aggregate.Get(ctx, u, aggregate.Schedule, id)
		if err != nil {
			return err
		}
		_, err = a.Do(schedule.Delete{Actor: c.Actor, At: s.now()})
		return err
	})
	return err
}

// FireSchedule records that tick of schedule id is due, with a fresh run
// id for a drain to queue (ScheduleFired). Another scheduler firing the
// same tick at once loses the append, decides again and finds it fired:
// fired is then false. Like an assignment it does not wait for the read
// models.
func (s *System) FireSchedule(ctx context.Context, c Caller, id string, tick time.Time) (fired bool, runID string, err error) {
	if runID, err = newID(ids.Run); err != nil {
		return false, "", err
	}
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: c.Actor, CorrelationID: id})
	out, err := s.executeNoWait(ctx, "fire schedule", func(ctx context.Context, u *aggregate.Unit) error {
		a, err := aggregate.Get(ctx, u, aggregate.Schedule, id)
		if err != nil {
			return err
		}
		if !a.State().Exists() {
			return nil // deleted since it was listed
		}
		_, err = a.Do(schedule.Fire{Tick: tick.UTC(), RunID: runID, Actor: c.Actor, At: s.now()})
		return err
	})
	if err != nil || out == nil {
		return false, "", err
	}
	s.log.InfoContext(ctx, "schedule fired", "schedule_id", id, "tick", tick, "run_id", runID)
	return true, runID, nil
}

// ScheduledRun is a fired tick whose run is to be queued.
type ScheduledRun struct {
	ScheduleID  string
	Tick        time.Time
	RunID       string
	StackID     string
	Kind        schedule.Kind
	TaskCommand string
}

// QueueScheduledRun queues the run of a fired tick at the head of the
// stack's branch: a DRIFT schedule's as a PROPOSED drift-detection run, a
// TRACKED or TASK schedule's as such. The run id was chosen when the tick
// fired, so a retry after a lost answer finds the run queued and changes
// nothing. A deleted stack, or a manual lock, skips the tick (logged).
func (s *Service) QueueScheduledRun(ctx context.Context, r ScheduledRun) error {
	st, err := aggregate.Load(ctx, s.aggs, aggregate.Run, r.RunID)
	if err != nil {
		return err
	}
	if st.Exists() {
		return nil
	}
	stk, err := aggregate.Load(ctx, s.aggs, aggregate.Stack, r.StackID)
	if err != nil {
		return err
	}
	if !stk.Exists() {
		s.log.InfoContext(ctx, "scheduled run skipped: the stack was deleted", "schedule_id", r.ScheduleID, "stack_id", r.StackID)
		return nil
	}
	commit, err := s.branchHead(ctx, r.StackID)
	if err != nil {
		return err
	}
	q := queuedRun{runID: r.RunID, stackID: r.StackID, commit: commit, actor: ScheduleActor, at: s.now()}
	switch r.Kind {
	case schedule.Drift:
		q.typ, q.drift = run.Proposed, true
	case schedule.Tracked:
		q.typ = run.Tracked
	case schedule.Task:
		q.typ, q.taskCommand = run.Task, r.TaskCommand
	default:
		return &domain.ValidationError{Field: "kind", Problem: fmt.Sprintf("unknown schedule kind %q", r.Kind)}
	}
	ctx = eventstore.WithMetadata(ctx, eventstore.Metadata{Actor: ScheduleActor, CorrelationID: r.ScheduleID})
	_, err = s.executeNoWait(ctx, "queue scheduled run", func(ctx context.Context, u *aggregate.Unit) error {
		return queueRun(ctx, u, q)
	})
	switch {
	case errors.Is(err, domain.ErrAlreadyExists):
		return nil
	case errors.Is(err, stack.ErrLockedByOther):
		s.log.InfoContext(ctx, "scheduled run skipped: the stack is locked", "schedule_id", r.ScheduleID, "stack_id", r.StackID, "err", err)
		return nil
	case err != nil:
		return err
	}
	s.log.InfoContext(ctx, "scheduled run queued", "schedule_id", r.ScheduleID, "run_id", r.RunID, "kind", r.Kind, "commit", commit)
	return nil
}

// RecordScheduleFailure records that the run of a fired tick could not be
// queued, for good.
func (s *System) RecordScheduleFailure(ctx context.Context, id string, tick time.Time, reason string) error {
	_, err := s.executeNoWait(ctx, "record schedule failure", func(ctx context.Context, u *aggregate.Unit) error {
		a, err := aggregate.Get(ctx, u, aggregate.Schedule, id)
		if err != nil {
			return err
		}
		if !a.State().Exists() {
			return nil
		}
		_, err = a.Do(schedule.RecordFailure{Tick: tick, Reason: truncate(reason, run.MaxNoteLength), Actor: DrainActor, At: s.now()})
		return err
	})
	return err
}
