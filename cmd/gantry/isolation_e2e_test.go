package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/moby/moby/client"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/executor"
)

// TestLauncherSecretsNeverReachARun: the process executor's runs find
// neither the pool token nor the key, not in their environment, not in
// /proc/<pid>/environ of any ancestor, the launcher included.
func TestLauncherSecretsNeverReachARun(t *testing.T) {
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "secrets", 1)
	token := strings.TrimPrefix(pool.env[0], "GANTRY_TOKEN=")
	key := strings.TrimPrefix(pool.env[1], "GANTRY_POOL_PRIVATE_KEY=")
	c := srv.as(srv.adminToken(t))
	stack := c.createStack(t, &gantryv1.CreateStackRequest{Name: "secrets", RepositoryUrl: demoRepo(t), WorkerPoolId: pool.id, ManagedState: true})
	script := `p=$PPID
while [ "$p" -gt 1 ]; do echo "ancestor $p"; tr '\0' '\n' < /proc/$p/environ; p=$(cut -d' ' -f4 /proc/$p/stat); done
env; echo environ-done`
	res, err := c.runs.TriggerTask(testCtx(t), connect.NewRequest(&gantryv1.TriggerTaskRequest{Stack: stack, Command: script}))
	if err != nil {
		t.Fatal(err)
	}
	task := res.Msg.GetRun().GetId()
	c.waitRunState(t, task, gantryv1.RunState_RUN_STATE_FINISHED)
	logs := srv.mustCLI(t, "run", "logs", task)
	if !strings.Contains(logs, "environ-done") || !strings.Contains(logs, "GANTRY_RUN_ID="+task) ||
		!strings.Contains(logs, fmt.Sprintf("ancestor %d", pool.procs[0].cmd.Process.Pid)) {
		t.Fatalf("the task did not read its ancestors' environments and its own:\n%s", logs)
	}
	for name, secret := range map[string]string{"the pool token": token, "the pool key": key} {
		if strings.Contains(logs, secret) {
			t.Errorf("the run found %s", name)
		}
	}
}

// TestHookDiesWithItsKilledLauncher: a hook's processes, the one in the
// background included, end when their launcher is killed with SIGKILL.
func TestHookDiesWithItsKilledLauncher(t *testing.T) {
	srv := startServer(t)
	pool := startLauncherPool(t, srv, "killed", 1)
	dir := t.TempDir()
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "killed", RepositoryUrl: demoRepo(t), WorkerPoolId: pool.id, ManagedState: true,
		// The launcher registers the hook's process group with the run's
		// group watch right after starting it; the hook waits a second
		// first, so that the kill does not come before that.
		Hooks: &gantryv1.Hooks{BeforePlan: []string{"sleep 1; sleep 300 & echo $! > " + dir + "/bg; echo $$ > " + dir + "/fg; exec sleep 301"}}})
	c.trigger(t, "killed", gantryv1.RunType_RUN_TYPE_TRACKED)
	var pids []int
	await.Until(t, runEndTimeout, "the hook's pid files", func() bool {
		pids = pids[:0]
		for _, name := range []string{"bg", "fg"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil || perr != nil {
				return false
			}
			pids = append(pids, pid)
		}
		return true
	})
	if err := pool.procs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		await.Until(t, 10*time.Second, fmt.Sprintf("the hook's process %d to end", pid), func() bool { return pidGone(pid) })
	}
}

// pidGone reports whether process pid has ended (a zombie has).
func pidGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] == "Z"
}

// requireDocker returns a client of the Docker engine; without one the
// test is skipped, or fails when CI=true (CI runs the Docker tests on the
// real engine).
func requireDocker(t *testing.T) *client.Client {
	t.Helper()
	cli, err := executor.Engine(os.Getenv("DOCKER_HOST"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Docker engine: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// poolContainers lists the containers of the pool's launchers, of run
// runID if it is not "" (a container started in advance is named after
// its run; others also have its label).
func poolContainers(t *testing.T, cli *client.Client, poolID, runID string) []string {
	t.Helper()
	filters := make(client.Filters).Add("label", executor.LabelPool+"="+poolID)
	if runID != "" {
		filters.Add("name", executor.ContainerName(runID))
	}
	list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestDockerLauncher: a docker-based `gantry launcher` runs a tracked run
// with managed state in a container (terraform reaches the state through
// the launcher), and after a SIGKILL of the launcher, the next launcher of
// the host removes the run's container before its worker registers.
func TestDockerLauncher(t *testing.T) {
	cli := requireDocker(t)
	srv := startServer(t)
	env := "GANTRY_LAUNCHER_EXECUTOR=docker"
	pool := startLauncherPool(t, srv, "docker", 1, env)
	t.Cleanup(func() {
		for _, id := range poolContainers(t, cli, pool.id, "") {
			_, _ = cli.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
		}
	})
	c := srv.as(srv.adminToken(t))
	repo := demoRepo(t)
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "boxed", RepositoryUrl: repo, WorkerPoolId: pool.id, ManagedState: true, Autodeploy: true,
		Hooks: &gantryv1.Hooks{BeforeInit: []string{`echo "uid=$(id -u) home=$HOME"`}}})
	run := c.trigger(t, "boxed", gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
	if n := srv.stateVersions(t, "boxed"); n != 1 {
		t.Errorf("%d state versions, want 1", n)
	}
	if logs := srv.mustCLI(t, "run", "logs", run); !strings.Contains(logs, "uid=10001 home="+executor.ContainerWorkspace+"/home") {
		t.Errorf("the run did not run in a container:\n%s", logs)
	}

	c.createStack(t, &gantryv1.CreateStackRequest{Name: "stuck", RepositoryUrl: repo, WorkerPoolId: pool.id, ManagedState: true,
		Hooks: &gantryv1.Hooks{BeforePlan: []string{"echo stuck; exec sleep 300"}}})
	stuck := c.trigger(t, "stuck", gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, stuck, gantryv1.RunState_RUN_STATE_PLANNING)
	await.Until(t, 30*time.Second, "the run's container", func() bool { return len(poolContainers(t, cli, pool.id, stuck)) == 1 })
	if err := pool.procs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-pool.procs[0].exited
	if left := poolContainers(t, cli, pool.id, stuck); len(left) != 1 {
		t.Fatalf("after the SIGKILL the run's container should still be there, found %v", left)
	}
	pool.start(t, srv, 1, env) // returns once the new worker is IDLE
	if left := poolContainers(t, cli, pool.id, stuck); len(left) != 0 {
		t.Errorf("the dead launcher's container %v is still there after the next launcher registered", left)
	}
}

// TestDevPublicPoolInContainers: gantry dev's public pool with the Docker
// executor (gantry dev --executor docker) runs a run with managed state in
// a container.
func TestDevPublicPoolInContainers(t *testing.T) {
	requireDocker(t)
	docker := &executor.DockerConfig{KeepWarm: true}
	var progress strings.Builder
	if err := ensureRunnerImage(testCtx(t), docker, &progress); err != nil {
		t.Fatalf("the default runner image: %v\n%s", err, progress.String())
	}
	srv := startServer(t, func(c *serverConfig) {
		c.publicWorkers, c.dataDir, c.path, c.docker = 1, t.TempDir(), os.Getenv("PATH"), docker
	})
	await.Until(t, 30*time.Second, "an IDLE public worker", func() bool {
		return strings.Contains(srv.mustCLI(t, "pool", "workers", "wp_public"), "IDLE")
	})
	c := srv.as(srv.adminToken(t))
	c.createStack(t, &gantryv1.CreateStackRequest{Name: "devbox", RepositoryUrl: demoRepo(t), WorkerPoolId: "wp_public", ManagedState: true, Autodeploy: true,
		Hooks: &gantryv1.Hooks{BeforeInit: []string{`echo "uid=$(id -u) home=$HOME"`}}})
	run := c.trigger(t, "devbox", gantryv1.RunType_RUN_TYPE_TRACKED)
	c.waitRunState(t, run, gantryv1.RunState_RUN_STATE_FINISHED)
	if n := srv.stateVersions(t, "devbox"); n != 1 {
		t.Errorf("%d state versions, want 1", n)
	}
	if logs := srv.mustCLI(t, "run", "logs", run); !strings.Contains(logs, "uid=10001 home="+executor.ContainerWorkspace+"/home") {
		t.Errorf("the run did not run in a container:\n%s", logs)
	}
}
