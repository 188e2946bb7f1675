package executor_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// TestDockerRunSeesOnlyWhatItIsEntitledTo is the Docker executor's
// isolation guarantee: a task that looks for the launcher's secrets, the
// pool's key file, the engine's socket and another run's workspace finds
// none of them, and runs as an unprivileged user.
func TestDockerRunSeesOnlyWhatItIsEntitledTo(t *testing.T) {
	requireDocker(t)
	const (
		token      = "launcher-token-5512"
		key        = "launcher-pool-key-8871"
		otherMark  = "other-run-marker-3391"
		stackValue = "stack-variable-value-1207"
	)
	t.Setenv("GANTRY_TOKEN", token)
	t.Setenv("GANTRY_POOL_PRIVATE_KEY", key)
	keyFile := filepath.Join(t.TempDir(), "pool.key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig, "terraform.tfstate": appliedState(t)})
	h := newHarnessFor(t, dockerKind, nil)

	// Another run of the same worker, under way, with a file in its workspace.
	other := job(repo, commit)
	other.Hooks.BeforeInit = []string{`echo ` + otherMark + ` > "$HOME/mark"; echo other-ready; exec sleep 30`}
	otherRec := newRecorder()
	otherRun := h.start(t, context.Background(), other, otherRec)
	otherRec.waitForLine(t, "other-ready")
	entries, err := os.ReadDir(h.cfg.WorkDir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("the work directory holds %v (%v), want the other run's workspace", entries, err)
	}
	otherWorkspace := filepath.Join(h.cfg.WorkDir, entries[0].Name())

	j := job(repo, commit)
	j.Type, j.Autodeploy = run.Task, false
	j.Env = []executor.Variable{{Name: "STACK_VAR", Value: stackValue}}
	j.TaskCommand = strings.Join([]string{
		`echo "uid=$(id -u) gid=$(id -g)"`,
		`for f in /proc/[0-9]*/environ; do tr '\0' '\n' < "$f"; done 2>/dev/null | sort -u`,
		`env | sort`,
		`ls -l /var/run/docker.sock /run/docker.sock 2>&1`,
		`cat ` + keyFile + ` 2>&1`,
		`ls ` + otherWorkspace + ` 2>&1`,
		`find / \( -path /proc -o -path /sys \) -prune -o -name 'gantry-run_*' -print 2>/dev/null | sed 's/^/found: /'`,
		`grep -rl ` + otherMark[:12] + `[-]marker / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | sed 's/^/found: /'`,
		`echo checks-done`,
	}, "\n")
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	otherRun.Stop()
	wait(t, otherRun)
	if res.Status != run.Finished {
		t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}
	log := rec.log(run.PhasePerforming)
	for _, s := range []string{"uid=10001 gid=10001", "STACK_VAR=" + stackValue, "checks-done"} {
		if !strings.Contains(log, s) {
			t.Errorf("the task's log lacks %q:\n%s", s, log)
		}
	}
	for _, p := range []string{"/var/run/docker.sock", "/run/docker.sock", keyFile, otherWorkspace} {
		if !slices.ContainsFunc(strings.Split(log, "\n"), func(l string) bool {
			return strings.Contains(l, p) && strings.HasSuffix(l, "No such file or directory")
		}) {
			t.Errorf("the task found %s:\n%s", p, log)
		}
	}
	for _, s := range []string{token, key, otherMark, "found: "} {
		if strings.Contains(log, s) {
			t.Errorf("the task found %q:\n%s", s, log)
		}
	}
}

// TestDockerCustomRunnerImage: any image with a POSIX sh is a runner image;
// the stack's image is the one used.
func TestDockerCustomRunnerImage(t *testing.T) {
	cli := requireDocker(t)
	image := "gantry-test/sh-only:" + strconv.Itoa(os.Getpid())
	buildImage(t, cli, image, map[string][]byte{
		"Dockerfile":    []byte("FROM scratch\nCOPY busybox /bin/sh\nCOPY marker /etc/gantry-marker\n"),
		"marker":        []byte("from-the-custom-image\n"),
		"busybox":       readFile(t, staticBusybox(t)),
		".dockerignore": nil,
	})
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarnessFor(t, dockerKind, nil)
	j := job(repo, commit)
	j.RunnerImage = image
	j.Hooks.BeforeInit = []string{`read m < /etc/gantry-marker; echo "marker=$m"`}
	j.Hooks.AfterApply = []string{"terraform state list"}
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	if res.Status != run.Finished {
		t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}
	if !strings.Contains(rec.log(run.PhaseInitializing), "marker=from-the-custom-image") {
		t.Errorf("the run did not use the stack's image:\n%s", rec.log(run.PhaseInitializing))
	}
	if !strings.Contains(rec.log(run.PhaseApplying), "terraform_data.demo") {
		t.Errorf("the APPLYING log:\n%s", rec.log(run.PhaseApplying))
	}
}

// TestDockerMissingImageFailsPreparing: an image the engine neither has nor
// can pull fails the run in PREPARING, naming the image.
func TestDockerMissingImageFailsPreparing(t *testing.T) {
	requireDocker(t)
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarnessFor(t, dockerKind, nil)
	j := job(repo, commit)
	j.RunnerImage = "127.0.0.1:1/gantry-test/no-such-image:1"
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	want := "the runner image 127.0.0.1:1/gantry-test/no-such-image:1 is not on this worker and could not be pulled"
	if res.Status != run.Failed || !strings.Contains(res.Note, want) || !slices.Equal(phaseNames(res), []run.Phase{run.PhasePreparing}) {
		t.Fatalf("result = %s %q phases=%v, want FAILED in PREPARING with %q", res.Status, res.Note, phaseNames(res), want)
	}
	if !strings.Contains(rec.log(run.PhasePreparing), want) {
		t.Errorf("the PREPARING log does not say it:\n%s", rec.log(run.PhasePreparing))
	}
	assertEmptyDir(t, h.cfg.WorkDir)
}

// TestDockerScopedMounts: read-only mounts are in the containers of
// read-only phases only, write mounts in those of write phases only, and
// the other mounts in all.
func TestDockerScopedMounts(t *testing.T) {
	requireDocker(t)
	dirs := map[string]string{}
	for _, name := range []string{"all", "ro", "wo"} {
		dirs[name] = t.TempDir()
		if err := os.WriteFile(filepath.Join(dirs[name], name+"-file"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarnessFor(t, dockerKind, func(c *executor.Config) {
		c.Docker.Mounts = append(c.Docker.Mounts, executor.Mount{Source: dirs["all"], Target: "/extra/all", ReadOnly: true})
		c.Docker.ReadOnlyMounts = []executor.Mount{{Source: dirs["ro"], Target: "/extra/ro"}}
		c.Docker.WriteMounts = []executor.Mount{{Source: dirs["wo"], Target: "/extra/wo"}}
	})
	j := job(repo, commit)
	show := `ls /extra/all /extra/ro /extra/wo 2>&1; true`
	j.Hooks.BeforePlan = []string{show}
	j.Hooks.BeforeApply = []string{show}
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	if res.Status != run.Finished {
		t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}
	for phase, want := range map[run.Phase][2][]string{
		run.PhasePlanning: {{"all-file", "ro-file", "/extra/wo: No such file"}, {"wo-file"}},
		run.PhaseApplying: {{"all-file", "wo-file", "/extra/ro: No such file"}, {"ro-file"}},
	} {
		log := rec.log(phase)
		for _, s := range want[0] {
			if !strings.Contains(log, s) {
				t.Errorf("the %s log lacks %q:\n%s", phase, s, log)
			}
		}
		for _, s := range want[1] {
			if strings.Contains(log, s) {
				t.Errorf("the %s log has %q:\n%s", phase, s, log)
			}
		}
	}
}

// TestDockerKeepWarm: with KeepWarm a container waits for the next run,
// and the next run uses it.
func TestDockerKeepWarm(t *testing.T) {
	cli := requireDocker(t)
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarnessFor(t, dockerKind, func(c *executor.Config) { c.Docker.KeepWarm = true })
	h.exec.WarmUp("wkr_test")
	label := testLabel + "=" + t.Name()
	warm := waitWarm(t, cli, label, "")
	for i := range 2 {
		await.Until(t, waitLimit, "the executor to hold the container started in advance", h.exec.WarmReady)
		j := job(repo, commit)
		j.Hooks.BeforeInit = []string{`echo "hostname=$(hostname)"`}
		rec := newRecorder()
		res := h.run(t, j, rec)
		rec.check(t)
		if res.Status != run.Finished {
			t.Fatalf("run %d: result = %s %q\n%s", i, res.Status, res.Note, rec.allLogs())
		}
		// A container's hostname is its id's first 12 characters.
		if !strings.Contains(rec.log(run.PhaseInitializing), "hostname="+warm[:12]) {
			t.Errorf("run %d did not run in the container started in advance (%s):\n%s", i, warm[:12], rec.log(run.PhaseInitializing))
		}
		warm = waitWarm(t, cli, label, warm)
	}
}

// waitWarm waits for a container started in advance (no run label) of the
// harness with label, other than the one with id used, and returns its id.
func waitWarm(t testing.TB, cli *client.Client, label, used string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{
			Filters: make(client.Filters).Add("label", label).Add("status", "running")})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Items {
			if _, ok := c.Labels[executor.LabelRun]; !ok && c.ID != used {
				return c.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no container was started in advance")
		}
		time.Sleep(50 * time.Millisecond) // a bounded poll
	}
}

// TestDockerRemoveOrphans: a launcher removes the containers of launchers
// of its host that no longer run, and leaves a live one's alone.
func TestDockerRemoveOrphans(t *testing.T) {
	cli := requireDocker(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	mk := func(pid, started string) string {
		c, err := cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{
			Config: &container.Config{Image: executor.DefaultRunnerImage, Cmd: []string{"sleep", "60"}, Labels: map[string]string{
				executor.LabelHost: host, executor.LabelPID: pid, executor.LabelStarted: started, executor.LabelRun: "run_orphan", testLabel: t.Name(),
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
		})
		if _, err := cli.ContainerStart(context.Background(), c.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	orphan := mk(strconv.Itoa(dead.Process.Pid), "1")
	selfStart := readStat(t, os.Getpid())
	live := mk(strconv.Itoa(os.Getpid()), selfStart)
	h := newHarnessFor(t, dockerKind, nil)
	n, err := h.exec.RemoveOrphans(context.Background())
	// Another launcher of this host (a test running beside this one) may
	// have removed the orphan first: what counts is that it is gone.
	if err != nil {
		t.Fatalf("RemoveOrphans = %d, %v", n, err)
	}
	if _, err := cli.ContainerInspect(context.Background(), orphan, client.ContainerInspectOptions{}); err == nil {
		t.Error("the dead launcher's container is still there")
	}
	if _, err := cli.ContainerInspect(context.Background(), live, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("the live launcher's container was removed: %v", err)
	}
}

// TestDockerSettingsAreChecked: a network or a runtime the engine does not
// have, and mounts that are malformed or hand over the engine's socket,
// are refused when the executor is made.
func TestDockerSettingsAreChecked(t *testing.T) {
	requireDocker(t)
	for name, tc := range map[string]struct {
		mod  func(*executor.DockerConfig)
		want string
	}{
		"network": {func(d *executor.DockerConfig) { d.Network = "gantry-test-no-such-network" }, `network "gantry-test-no-such-network" does not exist`},
		"runtime": {func(d *executor.DockerConfig) { d.Runtime = "gantry-test-no-such-runtime" }, `runtime "gantry-test-no-such-runtime" is not one of the docker engine's`},
		"socket": {func(d *executor.DockerConfig) {
			d.Mounts = []executor.Mount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}, "never gets the engine's socket"},
		"relative": {func(d *executor.DockerConfig) { d.WriteMounts = []executor.Mount{{Source: "cache", Target: "/cache"}} }, "both paths must be absolute"},
		"reserved": {func(d *executor.DockerConfig) {
			d.Mounts = []executor.Mount{{Source: "/tmp", Target: executor.ContainerWorkspace}}
		}, "clashes with " + executor.ContainerWorkspace},
		"root user": {func(d *executor.DockerConfig) { d.User = "0:0" }, "never run as root"},
	} {
		cfg := executor.Config{WorkDir: t.TempDir(), PoolKey: poolKey(), Workspaces: executor.BucketStore{},
			Docker: &executor.DockerConfig{}}
		tc.mod(cfg.Docker)
		if e, err := executor.New(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			if e != nil {
				e.Close()
			}
			t.Errorf("%s: New = %v, want an error with %q", name, err, tc.want)
		}
	}
	if _, err := executor.ParseMounts("/a:/b,/c:/d:ro, /e:/f:rw"); err != nil {
		t.Errorf("ParseMounts of good mounts: %v", err)
	}
	if _, err := executor.ParseMounts("/a:/b,/c,/d:/e:/f:/g,/h:/i:sometimes"); err == nil ||
		!strings.Contains(err.Error(), `"/c"`) || !strings.Contains(err.Error(), `"/h:/i:sometimes"`) {
		t.Errorf("ParseMounts of bad mounts = %v", err)
	}
}

// TestDockerRunEnvironmentHasNoLauncherVariables: in a container, a run
// gets its variables (TestEnvironmentFollowsScopes checks their scopes),
// the tools first in PATH and HOME in its workspace, and nothing of the
// launcher's environment.
func TestDockerRunEnvironmentHasNoLauncherVariables(t *testing.T) {
	requireDocker(t)
	t.Setenv("GANTRY_TEST_LAUNCHER_ONLY", "leaked")
	repo, commit := newRepo(t, map[string]string{"main.tf": demoConfig})
	h := newHarnessFor(t, dockerKind, nil)
	j := job(repo, commit)
	j.Type = run.Proposed
	j.Whitelist = []executor.Variable{{Name: "WL", Value: "whitelisted", Scope: stack.ScopeReadOnly}}
	j.Hooks.BeforeInit = []string{`env | sort`}
	rec := newRecorder()
	res := h.run(t, j, rec)
	rec.check(t)
	if res.Status != run.Finished {
		t.Fatalf("result = %s %q\n%s", res.Status, res.Note, rec.allLogs())
	}
	log := rec.log(run.PhaseInitializing)
	if strings.Contains(log, "GANTRY_TEST_LAUNCHER_ONLY") || !strings.Contains(log, "WL=whitelisted") ||
		!strings.Contains(log, "PATH="+executor.ContainerToolDir+":") || !strings.Contains(log, "HOME="+executor.ContainerWorkspace+"/home") {
		t.Errorf("the environment in the container:\n%s", log)
	}
}

func buildImage(t *testing.T, cli *client.Client, tag string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := cli.ImageBuild(context.Background(), &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	out := string(data)
	res.Body.Close()
	if strings.Contains(out, `"error"`) {
		t.Fatalf("build %s: %s", tag, out)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
}

func staticBusybox(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no busybox (Debian: busybox-static; scripts/prereqs installs it)")
	return ""
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// readStat returns the start time of process pid as /proc gives it.
func readStat(t *testing.T, pid int) string {
	t.Helper()
	s := string(readFile(t, "/proc/"+strconv.Itoa(pid)+"/stat"))
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[19]
}
