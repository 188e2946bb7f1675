package stack

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
	"github.com/gantryhq/gantry/domain/run"
)

const (
	stackID = "stk_01"
	alice   = "user:alice"
	bob     = "user:bob"
	sched   = "system:scheduler"
	run1    = "run_01"
	run2    = "run_02"
	run3    = "run_03"
	repo    = "https://github.com/acme/infra.git"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func at(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

func given(events ...Event) State {
	var s State
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

// defaults is what a stack created with only a name and repository gets.
var defaults = Settings{Name: "prod", RepositoryURL: repo, Branch: "main", Tool: Terraform, WorkerPoolID: "wp_public"}

var (
	created    = StackCreated{StackID: stackID, Settings: defaults, At: at(0), Actor: alice}
	lockedBob  = StackLocked{Note: "migrating", At: at(1), Actor: bob}
	plainEnv   = StackEnvSet{Key: "TF_LOG", Name: "TF_LOG", Scope: ScopeAll, Value: "debug", At: at(1), Actor: alice}
	secretEnv  = StackEnvSet{Key: "wo_TOKEN", Name: "TOKEN", Scope: ScopeWriteOnly, Secret: true, Ciphertext: []byte{1, 2, 3}, At: at(1), Actor: alice}
	withQueued = []Event{created, enqueued(run1, alice), acquired(run1), enqueued(run2, bob), enqueued(run3, alice)}
)

func enqueued(id, by string) StackRunEnqueued {
	return StackRunEnqueued{RunID: id, RunType: run.Tracked, At: at(2), Actor: by}
}

func acquired(id string) StackLockAcquired {
	return StackLockAcquired{RunID: id, At: at(3), Actor: sched}
}

type wantErr struct {
	is    error
	field string // for ErrInvalid: a ValidationError naming this field
}

func invalid(field string) *wantErr { return &wantErr{domain.ErrInvalid, field} }
func is(err error) *wantErr         { return &wantErr{is: err} }

func hasField(err error, field string) bool {
	var ve *domain.ValidationError
	if errors.As(err, &ve) && ve.Field == field {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasField(e, field) {
				return true
			}
		}
	}
	return false
}

func TestDecide(t *testing.T) {
	withSettings := func(mod func(*Settings)) Settings {
		s := Settings{Name: "prod", RepositoryURL: repo}
		mod(&s)
		return s
	}
	full := Settings{
		Name: "prod.eu-west_1", Description: "Production\nEU", RepositoryURL: "git@github.com:acme/infra.git",
		Branch: "release/2026", ProjectRoot: "./envs/../envs/prod/", Tool: OpenTofu, WorkerPoolID: "wp_private1",
		RunnerImage: "ghcr.io/acme/runner:1.2", Autodeploy: true, Labels: []string{"team:infra", "eu", "team:infra"},
		Hooks: Hooks{BeforeInit: []string{"echo hi"}, AfterRun: []string{"./notify.sh", "echo done"}, AfterPlan: []string{}},
	}
	fullNormalized := full
	fullNormalized.ProjectRoot, fullNormalized.Labels = "envs/prod", []string{"eu", "team:infra"}
	fullNormalized.Hooks.AfterPlan = nil

	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   *wantErr
	}{
		// Create
		{"create with defaults", nil, Create{StackID: stackID, Settings: withSettings(func(*Settings) {}), Actor: alice, At: at(0)},
			[]Event{created}, nil},
		{"create with every setting, normalized", nil, Create{StackID: stackID, Settings: full, ManagedState: true, Actor: alice, At: at(0)},
			[]Event{StackCreated{StackID: stackID, Settings: fullNormalized, ManagedState: true, At: at(0), Actor: alice}}, nil},
		{"create with a run id", nil, Create{StackID: run1, Settings: defaults, Actor: alice, At: at(0)}, nil, invalid("stack_id")},
		{"create without name", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Name = "" }), Actor: alice, At: at(0)}, nil, invalid("name")},
		{"create with a spaced name", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Name = "my stack" }), Actor: alice, At: at(0)}, nil, invalid("name")},
		{"create named .", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Name = "." }), Actor: alice, At: at(0)}, nil, invalid("name")},
		{"create named ..", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Name = ".." }), Actor: alice, At: at(0)}, nil, invalid("name")},
		{"create with too many labels", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) {
			for i := range domain.MaxLabels + 1 {
				s.Labels = append(s.Labels, fmt.Sprint("l", i))
			}
		}), Actor: alice, At: at(0)}, nil, invalid("labels")},
		{"create with a long name", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Name = strings.Repeat("a", 101) }), Actor: alice, At: at(0)}, nil, invalid("name")},
		{"create with a bad repository", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.RepositoryURL = "ftp://x/y" }), Actor: alice, At: at(0)}, nil, invalid("repository_url")},
		{"create with a bad branch", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Branch = "a..b" }), Actor: alice, At: at(0)}, nil, invalid("branch")},
		{"create with an escaping root", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.ProjectRoot = "a/../../etc" }), Actor: alice, At: at(0)}, nil, invalid("project_root")},
		{"create with an absolute root", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.ProjectRoot = "/etc" }), Actor: alice, At: at(0)}, nil, invalid("project_root")},
		{"create with an unknown tool", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Tool = "pulumi" }), Actor: alice, At: at(0)}, nil, invalid("tool")},
		{"create with a stack id as pool", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.WorkerPoolID = stackID }), Actor: alice, At: at(0)}, nil, invalid("worker_pool_id")},
		{"create with a spaced image", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.RunnerImage = "a b" }), Actor: alice, At: at(0)}, nil, invalid("runner_image")},
		{"create with a blank label", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Labels = []string{" "} }), Actor: alice, At: at(0)}, nil, invalid("labels")},
		{"create with a blank hook", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Hooks.BeforeApply = []string{""} }), Actor: alice, At: at(0)}, nil, invalid("hooks.before_apply")},
		{"create with a control character in the description", nil, Create{StackID: stackID, Settings: withSettings(func(s *Settings) { s.Description = "a\x1bb" }), Actor: alice, At: at(0)}, nil, invalid("description")},
		{"create without actor", nil, Create{StackID: stackID, Settings: defaults, At: at(0)}, nil, invalid("actor")},
		{"create reports every bad field", nil, Create{StackID: stackID, Settings: Settings{Tool: "x"}, Actor: alice, At: at(0)}, nil, invalid("tool")},
		{"create an existing stack", []Event{created}, Create{StackID: stackID, Settings: defaults, Actor: alice, At: at(1)}, nil, is(domain.ErrAlreadyExists)},
		{"create a deleted stack", []Event{created, StackDeleted{At: at(1), Actor: alice}}, Create{StackID: stackID, Settings: defaults, Actor: alice, At: at(2)}, nil, is(domain.ErrAlreadyExists)},

		// UpdateSettings
		{"update settings", []Event{created}, UpdateSettings{Settings: withSettings(func(s *Settings) { s.Autodeploy, s.Branch = true, "dev" }), Actor: bob, At: at(1)},
			[]Event{StackSettingsUpdated{Settings: Settings{Name: "prod", RepositoryURL: repo, Branch: "dev", Tool: Terraform, WorkerPoolID: "wp_public", Autodeploy: true}, At: at(1), Actor: bob}}, nil},
		{"update to equivalent settings changes nothing", []Event{created}, UpdateSettings{Settings: withSettings(func(s *Settings) { s.ProjectRoot = "./" }), Actor: bob, At: at(1)},
			nil, nil},
		{"update with bad settings", []Event{created}, UpdateSettings{Settings: withSettings(func(s *Settings) { s.Name = "" }), Actor: bob, At: at(1)}, nil, invalid("name")},
		{"update a missing stack", nil, UpdateSettings{Settings: defaults, Actor: bob, At: at(1)}, nil, is(domain.ErrNotFound)},
		{"update a deleted stack", []Event{created, StackDeleted{At: at(1), Actor: alice}}, UpdateSettings{Settings: defaults, Actor: bob, At: at(2)}, nil, is(domain.ErrNotFound)},

		// Delete
		{"delete", []Event{created}, Delete{Actor: alice, At: at(5)}, []Event{StackDeleted{At: at(5), Actor: alice}}, nil},
		{"delete while a run holds the lock", []Event{created, enqueued(run1, alice), acquired(run1)}, Delete{Actor: alice, At: at(5)}, nil, is(ErrInUse)},
		{"delete while a run waits", []Event{created, enqueued(run1, alice)}, Delete{Actor: alice, At: at(5)}, nil, is(ErrInUse)},
		{"delete after the runs ended", []Event{created, enqueued(run1, alice), acquired(run1), StackLockReleased{RunID: run1, At: at(4), Actor: sched}},
			Delete{Actor: alice, At: at(5)}, []Event{StackDeleted{At: at(5), Actor: alice}}, nil},
		{"delete a stack locked by someone else", []Event{created, lockedBob}, Delete{Actor: alice, At: at(5)}, nil, is(ErrLockedByOther)},
		{"delete twice", []Event{created, StackDeleted{At: at(1), Actor: alice}}, Delete{Actor: alice, At: at(5)}, nil, is(domain.ErrNotFound)},

		// SetEnv / DeleteEnv
		{"set a plain variable", []Event{created}, SetEnv{Key: "TF_LOG", Value: "debug", Actor: alice, At: at(1)}, []Event{plainEnv}, nil},
		{"set a read-only variable", []Event{created}, SetEnv{Key: "ro_AWS_ROLE", Value: "reader", Actor: alice, At: at(1)},
			[]Event{StackEnvSet{Key: "ro_AWS_ROLE", Name: "AWS_ROLE", Scope: ScopeReadOnly, Value: "reader", At: at(1), Actor: alice}}, nil},
		{"set a write-only secret", []Event{created}, SetEnv{Key: "wo_TOKEN", Secret: true, Ciphertext: []byte{1, 2, 3}, Actor: alice, At: at(1)}, []Event{secretEnv}, nil},
		{"set a secret in plain text", []Event{created}, SetEnv{Key: "TOKEN", Secret: true, Value: "hunter2", Ciphertext: []byte{1}, Actor: alice, At: at(1)}, nil, invalid("value")},
		{"set a secret without ciphertext", []Event{created}, SetEnv{Key: "TOKEN", Secret: true, Actor: alice, At: at(1)}, nil, invalid("ciphertext")},
		{"set a plain variable with ciphertext", []Event{created}, SetEnv{Key: "TOKEN", Value: "x", Ciphertext: []byte{1}, Actor: alice, At: at(1)}, nil, invalid("ciphertext")},
		{"set a value with NUL", []Event{created}, SetEnv{Key: "X", Value: "a\x00b", Actor: alice, At: at(1)}, nil, invalid("value")},
		{"set a key starting with a digit", []Event{created}, SetEnv{Key: "1X", Value: "x", Actor: alice, At: at(1)}, nil, invalid("key")},
		{"set a key with a dash", []Event{created}, SetEnv{Key: "A-B", Value: "x", Actor: alice, At: at(1)}, nil, invalid("key")},
		{"set a prefix without name", []Event{created}, SetEnv{Key: "ro_", Value: "x", Actor: alice, At: at(1)}, nil, invalid("key")},
		{"set a reserved variable", []Event{created}, SetEnv{Key: "wo_GANTRY_RUN_ID", Value: "x", Actor: alice, At: at(1)}, nil, invalid("key")},
		{"set the same value again", []Event{created, plainEnv}, SetEnv{Key: "TF_LOG", Value: "debug", Actor: bob, At: at(2)}, nil, nil},
		{"turn a plain variable into a secret", []Event{created, plainEnv}, SetEnv{Key: "TF_LOG", Secret: true, Ciphertext: []byte{9}, Actor: bob, At: at(2)},
			[]Event{StackEnvSet{Key: "TF_LOG", Name: "TF_LOG", Scope: ScopeAll, Secret: true, Ciphertext: []byte{9}, At: at(2), Actor: bob}}, nil},
		{"set on a missing stack", nil, SetEnv{Key: "X", Value: "x", Actor: alice, At: at(1)}, nil, is(domain.ErrNotFound)},
		{"delete a variable", []Event{created, secretEnv}, DeleteEnv{Key: "wo_TOKEN", Actor: alice, At: at(2)},
			[]Event{StackEnvDeleted{Key: "wo_TOKEN", At: at(2), Actor: alice}}, nil},
		{"delete a missing variable", []Event{created, secretEnv}, DeleteEnv{Key: "TOKEN", Actor: alice, At: at(2)}, nil, is(domain.ErrNotFound)},

		// Lock / Unlock
		{"lock", []Event{created}, Lock{Note: "migrating", Actor: bob, At: at(1)}, []Event{lockedBob}, nil},
		{"lock again by the holder", []Event{created, lockedBob}, Lock{Actor: bob, At: at(2)}, nil, nil},
		{"lock held by someone else", []Event{created, lockedBob}, Lock{Actor: alice, At: at(2)}, nil, is(ErrLockedByOther)},
		{"unlock by the holder", []Event{created, lockedBob}, Unlock{Actor: bob, At: at(2)},
			[]Event{StackUnlocked{Holder: bob, At: at(2), Actor: bob}}, nil},
		{"unlock by someone else", []Event{created, lockedBob}, Unlock{Actor: alice, At: at(2)}, nil, is(ErrLockedByOther)},
		{"forced unlock by an admin", []Event{created, lockedBob}, Unlock{Force: true, Actor: alice, At: at(2)},
			[]Event{StackUnlocked{Holder: bob, Forced: true, At: at(2), Actor: alice}}, nil},
		{"holder unlocking with force is not a forced unlock", []Event{created, lockedBob}, Unlock{Force: true, Actor: bob, At: at(2)},
			[]Event{StackUnlocked{Holder: bob, At: at(2), Actor: bob}}, nil},
		{"unlock an unlocked stack", []Event{created}, Unlock{Actor: alice, At: at(2)}, nil, nil},

		// EnqueueRun
		{"enqueue a tracked run", []Event{created}, EnqueueRun{RunID: run1, RunType: run.Tracked, Actor: alice, At: at(2)}, []Event{enqueued(run1, alice)}, nil},
		{"enqueue a task", []Event{created}, EnqueueRun{RunID: run1, RunType: run.Task, Actor: alice, At: at(2)},
			[]Event{StackRunEnqueued{RunID: run1, RunType: run.Task, At: at(2), Actor: alice}}, nil},
		{"proposed runs do not queue", []Event{created}, EnqueueRun{RunID: run1, RunType: run.Proposed, Actor: alice, At: at(2)}, nil, nil},
		{"proposed runs pass a manual lock", []Event{created, lockedBob}, EnqueueRun{RunID: run1, RunType: run.Proposed, Actor: alice, At: at(2)}, nil, nil},
		{"enqueue a queued run again", withQueued, EnqueueRun{RunID: run2, RunType: run.Tracked, Actor: bob, At: at(4)}, nil, nil},
		{"enqueue the lock holder again", withQueued, EnqueueRun{RunID: run1, RunType: run.Tracked, Actor: alice, At: at(4)}, nil, nil},
		{"enqueue on a stack locked by someone else", []Event{created, lockedBob}, EnqueueRun{RunID: run1, RunType: run.Tracked, Actor: alice, At: at(2)}, nil, is(ErrLockedByOther)},
		{"enqueue by the lock holder", []Event{created, lockedBob}, EnqueueRun{RunID: run1, RunType: run.Tracked, Actor: bob, At: at(2)}, []Event{enqueued(run1, bob)}, nil},
		{"enqueue a stack id", []Event{created}, EnqueueRun{RunID: stackID, RunType: run.Tracked, Actor: alice, At: at(2)}, nil, invalid("run_id")},
		{"enqueue an unknown type", []Event{created}, EnqueueRun{RunID: run1, RunType: "X", Actor: alice, At: at(2)}, nil, invalid("run_type")},

		// AcquireLock
		{"head acquires", []Event{created, enqueued(run1, alice), enqueued(run2, bob)}, AcquireLock{RunID: run1, Actor: sched, At: at(3)}, []Event{acquired(run1)}, nil},
		{"second in line waits", []Event{created, enqueued(run1, alice), enqueued(run2, bob)}, AcquireLock{RunID: run2, Actor: sched, At: at(3)}, nil, is(ErrLockBusy)},
		{"head waits while another run holds", withQueued, AcquireLock{RunID: run2, Actor: sched, At: at(3)}, nil, is(ErrLockBusy)},
		{"holder acquires again", withQueued, AcquireLock{RunID: run1, Actor: sched, At: at(3)}, nil, nil},
		{"unqueued run", []Event{created}, AcquireLock{RunID: run1, Actor: sched, At: at(3)}, nil, is(ErrNotQueued)},
		{"manual lock holds back other users' runs", []Event{created, enqueued(run1, alice), lockedBob}, AcquireLock{RunID: run1, Actor: sched, At: at(3)}, nil, is(ErrLockedByOther)},
		{"manual lock admits the holder's run", []Event{created, lockedBob, enqueued(run1, bob)}, AcquireLock{RunID: run1, Actor: sched, At: at(3)}, []Event{acquired(run1)}, nil},

		// ReleaseLock
		{"release by the holder", withQueued, ReleaseLock{RunID: run1, Actor: sched, At: at(5)}, []Event{StackLockReleased{RunID: run1, At: at(5), Actor: sched}}, nil},
		{"release of a queued run dequeues it", withQueued, ReleaseLock{RunID: run3, Actor: sched, At: at(5)}, []Event{StackRunDequeued{RunID: run3, At: at(5), Actor: sched}}, nil},
		{"release of an unrelated run", withQueued, ReleaseLock{RunID: "run_99", Actor: sched, At: at(5)}, nil, nil},
		{"release without time", withQueued, ReleaseLock{RunID: run1, Actor: sched}, nil, invalid("at")},

		{"pointer command", []Event{created}, &Lock{Note: "migrating", Actor: bob, At: at(1)}, []Event{lockedBob}, nil},
		{"nil command", []Event{created}, nil, nil, invalid("command")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(given(tc.given...), tc.cmd)
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != nil && !errors.Is(err, tc.err.is):
				t.Fatalf("error %v, want %v", err, tc.err.is)
			case tc.err != nil && tc.err.field != "" && !hasField(err, tc.err.field):
				t.Errorf("error %v does not name field %q", err, tc.err.field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

// The events Decide returns must not share memory with the command.
func TestEventsDoNotAliasCommand(t *testing.T) {
	c := Create{StackID: stackID, Settings: Settings{Name: "prod", RepositoryURL: repo, Hooks: Hooks{AfterRun: []string{"echo"}}}, Actor: alice, At: at(0)}
	events, err := Decide(State{}, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Settings.Hooks.AfterRun[0] = "rm -rf /"
	if got := events[0].(StackCreated).Settings.Hooks.AfterRun[0]; got != "echo" {
		t.Errorf("event hook changed with the command: %q", got)
	}
}

func TestLockedByOtherNamesHolder(t *testing.T) {
	_, err := Decide(given(created, lockedBob), EnqueueRun{RunID: run1, RunType: run.Task, Actor: alice, At: at(2)})
	var lbo *LockedByOtherError
	if !errors.As(err, &lbo) || lbo.Holder != bob {
		t.Fatalf("err %v, want LockedByOtherError naming %s", err, bob)
	}
}

func TestRepositoryURL(t *testing.T) {
	for _, ok := range []string{
		"file:///srv/git/infra", "file://localhost/srv/git/infra", "/srv/git/infra.git",
		"https://github.com/acme/infra.git", "http://git.local:8080/acme/infra", "ssh://git@github.com/acme/infra.git",
		"ssh://git@host:2222/acme/infra", "git@github.com:acme/infra.git", "deploy@10.0.0.1:repos/infra",
	} {
		if err := checkRepositoryURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "relative/path", "./infra", "ftp://host/repo", "https://github.com", "https:///acme/infra",
		"https://user:pass@github.com/acme/infra", "file://host/path", "file://", "github.com:acme/infra",
		"git@github.com:", "https://github.com/acme/in fra", "s3://bucket/repo",
	} {
		err := checkRepositoryURL(bad)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != "repository_url" {
			t.Errorf("%q: got %v, want a repository_url ValidationError", bad, err)
		}
	}
}

func TestBranch(t *testing.T) {
	for _, ok := range []string{"main", "release/2026.1", "feature/x_y-z", "v1.0"} {
		if err := checkBranch(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"-x", "/x", "x/", "x.", "x.lock", "a..b", "a@{1}", "a//b", "a/.b", ".x", "a b", "a:b", "a~1", "a^", "a?", "a*", "a[", `a\b`, "@", "a\tb"} {
		if err := checkBranch(bad); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestProjectRoot(t *testing.T) {
	for in, want := range map[string]string{
		"": "", ".": "", "./": "", "infra": "infra", "./infra/prod/": "infra/prod", "a/../b": "b", "a/./b//c": "a/b/c", "..foo": "..foo",
	} {
		got, err := normalizeProjectRoot(in)
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/abs", "..", "../x", "a/../../x", "./../x", "a\x00"} {
		if _, err := normalizeProjectRoot(bad); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%q accepted", bad)
		}
	}
}
