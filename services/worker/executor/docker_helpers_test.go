package executor_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/runnerimage"
)

// testLabel marks the containers of these tests, with the test's name.
const testLabel = "gantry.test"

// engine is the Docker engine at DOCKER_HOST or the default socket, with
// the default runner image built from its Dockerfile; nil where none
// answers.
var engine = sync.OnceValues(func() (*client.Client, error) {
	cli, err := executor.Engine(os.Getenv("DOCKER_HOST"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := runnerimage.Build(ctx, cli, executor.DefaultRunnerImage, nil); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
})

// requireDocker skips the test where no Docker engine answers, and fails
// it there when CI=true: CI runs the Docker tests on the real engine.
func requireDocker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := engine()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Docker engine for the Docker executor's tests: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	return cli
}

// testContainers lists the containers with label (key=value) that this
// test binary's executors started.
func testContainers(t testing.TB, cli *client.Client, label string) []string {
	t.Helper()
	filters := make(client.Filters).Add("label", executor.LabelPID+"="+strconv.Itoa(os.Getpid()))
	if label != "" {
		filters.Add("label", label)
	}
	list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range list.Items {
		out = append(out, fmt.Sprintf("%s %s %v", c.ID[:12], c.State, c.Labels))
	}
	return out
}

// waitNoContainers waits until no container of this binary has label.
func waitNoContainers(t *testing.T, label string) {
	t.Helper()
	cli := requireDocker(t)
	deadline := time.Now().Add(waitLimit)
	for {
		left := testContainers(t, cli, label)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers with %s are still there:\n%s", label, strings.Join(left, "\n"))
		}
		time.Sleep(50 * time.Millisecond) // a bounded poll: the engine has nothing to wait on
	}
}

// checkNoContainersLeft reports (and removes) the containers the tests
// left behind, then closes the engine's client.
func checkNoContainersLeft() error {
	cli, err := engine()
	if err != nil {
		return nil // no engine: no Docker test ran
	}
	defer cli.Close()
	filters := make(client.Filters).Add("label", executor.LabelPID+"="+strconv.Itoa(os.Getpid()))
	list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return err
	}
	if len(list.Items) > 0 {
		var ids []string
		for _, c := range list.Items {
			ids = append(ids, c.ID[:12]+" "+c.Labels[testLabel])
			_, _ = cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
		}
		return fmt.Errorf("the tests left %d containers: %s", len(ids), strings.Join(ids, ", "))
	}
	return nil
}
