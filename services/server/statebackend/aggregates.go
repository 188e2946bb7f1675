package statebackend

import (
	"context"
	"fmt"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
)

// loadRun folds the run's events: the status every request is checked
// against comes from the event store, never from a read model, so
// credentials stop working the moment the run leaves their phase.
func (s *Service) loadRun(ctx context.Context, runID string) (run.State, error) {
	var st run.State
	err := s.fold(ctx, runID, func(v any) bool {
		e, ok := v.(run.Event)
		if ok {
			st.Apply(e)
		}
		return ok
	})
	return st, err
}

func (s *Service) loadStack(ctx context.Context, stackID string) (stack.State, error) {
	var st stack.State
	err := s.fold(ctx, stackID, func(v any) bool {
		e, ok := v.(stack.Event)
		if ok {
			st.Apply(e)
		}
		return ok
	})
	return st, err
}

// fold decodes every event of a stream and hands it to apply, which reports
// whether the event belongs to the aggregate.
func (s *Service) fold(ctx context.Context, streamID string, apply func(any) bool) error {
	events, err := s.store.Load(ctx, streamID)
	if err != nil {
		return fmt.Errorf("load %s: %w", streamID, err)
	}
	for _, ev := range events {
		v, err := s.store.Registry().Decode(ev)
		if err != nil {
			return fmt.Errorf("load %s: %w", streamID, err)
		}
		if !apply(v) {
			return fmt.Errorf("load %s: event %s (%s) does not belong to the aggregate", streamID, ev.ID, ev.Type)
		}
	}
	return nil
}
