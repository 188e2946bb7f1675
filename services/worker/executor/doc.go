// Package executor runs the phases of one run on a Gantry worker, in a
// fresh directory on the worker's machine: the commands run as processes on
// the host (the process backend) or in a container of the stack's runner
// image (the Docker backend, Config.Docker), behind one small interface
// (sandbox.go), so that everything else below is the same for both.
//
// For each run it clones the stack's repository at exactly the run's commit,
// enters the project root, writes the managed-state override file, builds
// each phase's environment from a minimal base (never the launcher's own
// environment), and runs the stack's tool (terraform or tofu) and hooks
// (git always runs on the host):
//
//	PREPARING        clone and check out the commit
//	INITIALIZING     before_init, <tool> init -input=false, after_init
//	PLANNING         before_plan, <tool> plan -out=<plan> -detailed-exitcode, after_plan
//	APPLYING         before_apply, <tool> apply <plan>, after_apply
//	PERFORMING       sh -c <task command>                        (TASK runs)
//	PREPARING_APPLY  decrypt and unpack the saved workspace      (confirmed runs)
//
// A phase includes its hooks: a failing hook fails the phase. The after_run
// hooks run at the end of the run, inside its last phase (see Job).
//
// Every line a process writes is masked (secret values become ***) and
// handed to the caller's Reporter as it is written; the full masked log of
// each phase is part of the phase's result. Stop, a context canceled with
// ErrStopRequested, the logs timeout and the run timeout interrupt the
// running process group with SIGINT, then SIGKILL after a grace period.
//
// A tracked run whose plan has changes and that does not deploy
// automatically ends UNCONFIRMED: its workspace (source, .terraform, plan
// file) is archived, encrypted to the worker pool's public key and stored
// (SaveWorkspace, WorkspaceStore). Once confirmed, any worker of the pool
// restores it (RestoreWorkspace) and applies exactly the saved plan.
package executor
