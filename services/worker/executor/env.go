package executor

import (
	"net/url"
	"slices"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
)

// WritePhase reports whether a phase of a run of type t may change
// infrastructure or state, and so gets the write-scoped (wo_) variables
// instead of the read-only (ro_) ones. Write phases: APPLYING (DESTROYING
// for a destroy run), and every phase of a TASK (its command may do
// anything, init included). Read-only phases: INITIALIZING and PLANNING of
// TRACKED and PROPOSED runs. Unscoped variables go to every phase.
func WritePhase(t run.Type, p run.Phase) bool {
	return t == run.Task || p.Applies()
}

// environ returns the environment of the commands of phase p, as "K=V",
// sorted. Later sources override earlier ones:
//
//  1. the base: PATH (Config.Path), HOME and TMPDIR inside the workspace,
//     TF_IN_AUTOMATION=1, TF_INPUT=0, CHECKPOINT_DISABLE=1;
//  2. the launcher's whitelisted variables of the phase's scope;
//  3. the stack's variables of the phase's scope;
//  4. what identifies the run: GANTRY_RUN_ID, GANTRY_STACK_ID,
//     GANTRY_RUN_TYPE, TF_VAR_gantry_run_id, TF_VAR_gantry_stack_id;
//  5. the phase's own variables (Job.PhaseEnv);
//  6. with a provider plugin cache (TF_PLUGIN_CACHE_DIR),
//     TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE=true unless set
//     above (plugincache.go says why).
//
// Within 2 and 3, a variable scoped to the phase overrides an unscoped one of
// the same name, and a variable of the other scope is left out.
func (x *execution) environ(p run.Phase, extra []Variable) []string {
	write := WritePhase(x.job.Type, p)
	env := x.baseEnv(x.sb)
	for _, v := range scoped(x.job.Whitelist, write) {
		env[v.Name] = v.Value
	}
	for _, v := range scoped(x.job.Env, write) {
		env[v.Name] = v.Value
	}
	env["GANTRY_RUN_ID"] = x.job.RunID
	env["GANTRY_STACK_ID"] = x.job.StackID
	env["GANTRY_RUN_TYPE"] = string(x.job.Type)
	env["TF_VAR_gantry_run_id"] = x.job.RunID
	env["TF_VAR_gantry_stack_id"] = x.job.StackID
	for _, v := range extra {
		env[v.Name] = v.Value
	}
	pluginCacheDefaults(env)
	return envList(env)
}

// baseEnv is what every process of the run in sb gets: nothing of the
// launcher's own environment beyond Config.Path.
func (x *execution) baseEnv(sb sandbox) map[string]string {
	return map[string]string{
		"PATH":               sb.searchPath(),
		"HOME":               sb.path(x.ws.home),
		"TMPDIR":             sb.path(x.ws.tmp),
		"TF_IN_AUTOMATION":   "1",
		"TF_INPUT":           "0",
		"CHECKPOINT_DISABLE": "1", // no version check against the Internet from a worker
	}
}

// gitEnv is the environment of git while preparing the workspace: the base,
// the launcher's unscoped whitelisted variables (a proxy, a CA bundle), and
// settings that keep git from prompting or using unexpected transports.
func (x *execution) gitEnv() []string {
	env := x.baseEnv(x.host())
	for _, v := range x.job.Whitelist {
		if v.scope() == stack.ScopeAll {
			env[v.Name] = v.Value
		}
	}
	env["GIT_TERMINAL_PROMPT"] = "0"
	env["GIT_CONFIG_NOSYSTEM"] = "1"
	env["GIT_ALLOW_PROTOCOL"] = "file:git:http:https:ssh"
	return envList(env)
}

// scoped returns the variables a phase gets: the unscoped ones, overridden
// by those of the phase's scope.
func scoped(vars []Variable, write bool) []Variable {
	want := stack.ScopeReadOnly
	if write {
		want = stack.ScopeWriteOnly
	}
	var out []Variable
	for _, v := range vars {
		if v.scope() == stack.ScopeAll {
			out = append(out, v)
		}
	}
	for _, v := range vars {
		if v.scope() == want {
			out = append(out, v)
		}
	}
	return out
}

// secretValues are the values a job's logs must never show: secret
// variables, variables named in MaskNames, MaskValues, and a password in the
// repository URL (which git may print).
func secretValues(j Job) []string {
	out := maskedValues(j.Env, j.MaskNames)
	out = append(out, maskedValues(j.Whitelist, j.MaskNames)...)
	if u, err := url.Parse(j.RepositoryURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	return append(append(out, gitSecretValues(j.Git)...), j.MaskValues...)
}

// maskedValues returns the values of the secret variables among vars and of
// those named in names.
func maskedValues(vars []Variable, names []string) []string {
	var out []string
	for _, v := range vars {
		if v.Secret || slices.Contains(names, v.Name) {
			out = append(out, v.Value)
		}
	}
	return out
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
