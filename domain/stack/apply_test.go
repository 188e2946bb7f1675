package stack

import (
	"reflect"
	"testing"

	"github.com/gantryhq/gantry/domain/eventtest"
	"github.com/gantryhq/gantry/domain/run"
)

func TestEventsConform(t *testing.T) {
	eventtest.Conformance(t, "Stack", Events())
}

func TestApplyLockQueue(t *testing.T) {
	s := given(withQueued...)
	if s.LockHolder() != run1 || !reflect.DeepEqual(s.Queue(), []string{run2, run3}) {
		t.Fatalf("holder %q queue %v", s.LockHolder(), s.Queue())
	}
	s.Apply(StackRunDequeued{RunID: run3, At: at(4), Actor: sched})
	s.Apply(StackLockReleased{RunID: run1, At: at(5), Actor: sched})
	if s.LockHolder() != "" || !reflect.DeepEqual(s.Queue(), []string{run2}) {
		t.Fatalf("after release: holder %q queue %v", s.LockHolder(), s.Queue())
	}
	s.Apply(StackLockAcquired{RunID: run2, At: at(6), Actor: sched})
	if s.LockHolder() != run2 || len(s.Queue()) != 0 {
		t.Fatalf("after acquire: holder %q queue %v", s.LockHolder(), s.Queue())
	}
	// A release for a run that no longer holds the lock must not free it.
	s.Apply(StackLockReleased{RunID: run1, At: at(7), Actor: sched})
	if s.LockHolder() != run2 {
		t.Errorf("stale release freed the lock of %s", run2)
	}
}

func TestApplyManualLock(t *testing.T) {
	s := given(created, lockedBob)
	if l, ok := s.ManualLock(); !ok || l != (ManualLock{By: bob, Note: "migrating", At: at(1)}) {
		t.Fatalf("manual lock %+v, %v", l, ok)
	}
	s.Apply(StackUnlocked{Holder: bob, At: at(2), Actor: bob})
	if _, ok := s.ManualLock(); ok {
		t.Error("still locked after unlock")
	}
}

func TestApplySettingsAndLifecycle(t *testing.T) {
	s := given(StackCreated{StackID: stackID, Settings: defaults, ManagedState: true, At: at(0), Actor: alice})
	if !s.Exists() || s.ID() != stackID || !s.ManagedState() || s.CreatedBy() != alice || !s.CreatedAt().Equal(at(0)) {
		t.Fatalf("created stack: %+v", s)
	}
	updated := defaults
	updated.Labels = []string{"a", "b"}
	updated.Hooks.AfterRun = []string{"echo"}
	s.Apply(StackSettingsUpdated{Settings: updated, At: at(1), Actor: bob})
	got := s.Settings()
	if !reflect.DeepEqual(got, updated) {
		t.Fatalf("settings %+v, want %+v", got, updated)
	}
	got.Labels[0], got.Hooks.AfterRun[0] = "changed", "changed"
	if s.Settings().Labels[0] != "a" || s.Settings().Hooks.AfterRun[0] != "echo" {
		t.Error("Settings() exposes the state's slices")
	}
	if !s.ManagedState() {
		t.Error("settings update changed managed state")
	}
	s.Apply(StackDeleted{At: at(2), Actor: alice})
	if s.Exists() || !s.Deleted() {
		t.Error("deleted stack still exists")
	}
}

func TestApplyEnv(t *testing.T) {
	roToken := StackEnvSet{Key: "ro_TOKEN", Name: "TOKEN", Scope: ScopeReadOnly, Value: "read", At: at(1), Actor: alice}
	allToken := StackEnvSet{Key: "TOKEN", Name: "TOKEN", Scope: ScopeAll, Value: "any", At: at(1), Actor: alice}
	s := given(created, plainEnv, secretEnv, roToken, allToken)

	keys := func(vs []EnvVar) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Key)
		}
		return out
	}
	if got := keys(s.EnvVars()); !reflect.DeepEqual(got, []string{"TF_LOG", "TOKEN", "ro_TOKEN", "wo_TOKEN"}) {
		t.Errorf("env keys %v", got)
	}
	secret, _ := s.Env("wo_TOKEN")
	if want := (EnvVar{Key: "wo_TOKEN", Name: "TOKEN", Scope: ScopeWriteOnly, Secret: true, Ciphertext: []byte{1, 2, 3}}); !reflect.DeepEqual(secret, want) {
		t.Errorf("secret %+v, want %+v", secret, want)
	}
	secret.Ciphertext[0] = 99
	if again, _ := s.Env("wo_TOKEN"); again.Ciphertext[0] != 1 {
		t.Error("Env exposes the state's ciphertext")
	}
	// Scoped variables override the unscoped one of the same name.
	if got := keys(s.EnvFor(false)); !reflect.DeepEqual(got, []string{"TF_LOG", "ro_TOKEN"}) {
		t.Errorf("read-only phase env %v", got)
	}
	if got := keys(s.EnvFor(true)); !reflect.DeepEqual(got, []string{"TF_LOG", "wo_TOKEN"}) {
		t.Errorf("write phase env %v", got)
	}
	s.Apply(StackEnvDeleted{Key: "wo_TOKEN", At: at(2), Actor: alice})
	if got := keys(s.EnvFor(true)); !reflect.DeepEqual(got, []string{"TF_LOG", "TOKEN"}) {
		t.Errorf("write phase env after delete %v", got)
	}
}

// A State copied by value (as Decide receives it) must not see events applied
// to another copy.
func TestCopiesAreIndependent(t *testing.T) {
	a := given(created, plainEnv, enqueued(run1, alice))
	b := a
	a.Apply(StackEnvDeleted{Key: "TF_LOG", At: at(3), Actor: alice})
	a.Apply(enqueued(run2, alice))
	b.Apply(StackEnvSet{Key: "X", Name: "X", Scope: ScopeAll, Value: "1", At: at(3), Actor: alice})
	b.Apply(enqueued(run3, alice))
	if _, ok := b.Env("TF_LOG"); !ok {
		t.Error("deleting from one copy removed the variable from the other")
	}
	if _, ok := a.Env("X"); ok {
		t.Error("setting in one copy added the variable to the other")
	}
	if !reflect.DeepEqual(a.Queue(), []string{run1, run2}) || !reflect.DeepEqual(b.Queue(), []string{run1, run3}) {
		t.Errorf("copies share the queue: %v, %v", a.Queue(), b.Queue())
	}
	c := given(created, enqueued(run1, alice), enqueued(run2, alice), enqueued(run3, alice))
	d := c
	c.Apply(StackRunDequeued{RunID: run1, At: at(4), Actor: sched})
	d.Apply(StackLockAcquired{RunID: run1, At: at(4), Actor: sched})
	c.Apply(StackRunDequeued{RunID: run2, At: at(4), Actor: sched})
	if !reflect.DeepEqual(c.Queue(), []string{run3}) || !reflect.DeepEqual(d.Queue(), []string{run2, run3}) {
		t.Errorf("removing from one queue changed the other: %v, %v", c.Queue(), d.Queue())
	}
}

func TestApplyAcceptsPointers(t *testing.T) {
	byValue := given(created, enqueued(run1, alice))
	var byPointer State
	c, e := created, StackRunEnqueued{RunID: run1, RunType: run.Tracked, At: at(2), Actor: alice}
	byPointer.Apply(&c)
	byPointer.Apply(&e)
	if !reflect.DeepEqual(byValue, byPointer) {
		t.Errorf("pointer events applied differently")
	}
}
