package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakSetting reads a GANTRY_SOAK_* number.
func soakSetting(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// TestSoak is the soak of scripts/deploy/soak, not part of the suite: it
// runs only when GANTRY_SOAK_RUNS is set. It brings the compose project up
// on the three-node NATS cluster with GANTRY_SOAK_LAUNCHERS launchers (each
// its own container and host name), queues GANTRY_SOAK_RUNS runs over
// GANTRY_SOAK_STACKS stacks, and kills a random launcher (SIGKILL, then
// starts it again on the same work dir) every GANTRY_SOAK_KILL_SECONDS until
// every run has ended. It fails if a run is still under way 10 minutes
// after the last kill, if a stream of events has a gap, a run ended twice,
// or the EVENTS stream does not hold each stored event once; it logs the
// figures docs/benchmarks.md records.
func TestSoak(t *testing.T) {
	if os.Getenv("GANTRY_SOAK_RUNS") == "" {
		t.Skip("the soak runs from scripts/deploy/soak (GANTRY_SOAK_RUNS)")
	}
	requireDocker(t)
	runs := soakSetting(t, "GANTRY_SOAK_RUNS", 1000)
	stacks := soakSetting(t, "GANTRY_SOAK_STACKS", 20)
	launchers := soakSetting(t, "GANTRY_SOAK_LAUNCHERS", 8)
	every := time.Duration(soakSetting(t, "GANTRY_SOAK_KILL_SECONDS", 20)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	p := startProject(t, ctx, []string{"nats", "nats-2", "nats-3"}, "cluster.yml")

	// The launchers: as the compose file's, one container and host name each.
	tool := envFileValue(t, p, "GANTRY_TOOLS_DIR")
	demo := strings.TrimPrefix(p.repoURL, "file://")
	gitconfig := filepath.Join(p.dir, "gitconfig")
	names := make([]string, launchers)
	for i := range launchers {
		names[i] = fmt.Sprintf("%s-soak-launcher-%d", p.name, i+1)
		work := filepath.Join(p.dir, "work", fmt.Sprintf("soak-%d", i+1))
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
		args := []string{"run", "-d", "--name", names[i], "--hostname", fmt.Sprintf("soak-launcher-%d", i+1), "--network", p.name,
			"-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", tool + ":" + tool + ":ro", "-v", work + ":" + work,
			"-v", demo + ":" + demo + ":ro", "-v", gitconfig + ":" + gitconfig + ":ro",
			"-e", "GANTRY_WORKER_NETWORK=" + p.name, "-e", "PATH=" + tool + ":/usr/bin:/bin", "-e", "GANTRY_LAUNCHER_WORK_DIR=" + work,
			"-e", "GIT_CONFIG_GLOBAL=" + gitconfig, "-e", "GANTRY_WHITELIST_ENVS=GIT_CONFIG_GLOBAL", "-e", "GANTRY_LOG_LEVEL=warn"}
		for _, kv := range p.poolEnv {
			// The compose file's GANTRY_POOL_TOKEN is the launcher's GANTRY_TOKEN.
			if v, ok := strings.CutPrefix(kv, "GANTRY_POOL_TOKEN="); ok {
				kv = "GANTRY_TOKEN=" + v
			}
			args = append(args, "-e", kv)
		}
		run(t, ctx, nil, "", "docker", append(args, "gantry-deploy/launcher:local")...)
	}
	for i := range stacks {
		p.cli("server-1", "stack", "create", fmt.Sprintf("s%d", i), "--repo", p.repoURL, "--pool", "builders", "--managed-state", "--autodeploy")
	}

	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, runs)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int(next.Add(1)) - 1; n < runs; n = int(next.Add(1)) - 1 {
				server := []string{"server-1", "server-2"}[n%2]
				if out, err := p.tryCLI(server, "run", "trigger", fmt.Sprintf("s%d", n%stacks)); err != nil {
					errs <- fmt.Errorf("trigger %d through %s: %v: %s", n, server, err, out)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d runs queued over %d stacks in %s", runs, stacks, time.Since(start).Round(time.Second))

	// A random launcher killed every interval until every run has ended.
	done := make(chan struct{})
	var kills atomic.Int64
	var lastKill atomic.Int64
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				victim := names[rand.IntN(len(names))]
				if _, err := try(ctx, nil, "", "docker", "kill", victim); err == nil {
					kills.Add(1)
					lastKill.Store(time.Now().UnixNano())
				}
				_, _ = try(ctx, nil, "", "docker", "start", victim)
			}
		}
	}()
	type listed struct {
		Runs []struct {
			State string `json:"state"`
		} `json:"runs"`
	}
	counts := map[string]int{}
	for {
		clear(counts)
		for i := range stacks {
			var l listed
			if err := json.Unmarshal([]byte(p.cli("server-1", "run", "list", fmt.Sprintf("s%d", i), "--limit", strconv.Itoa(runs), "-o", "json")), &l); err != nil {
				t.Fatal(err)
			}
			for _, r := range l.Runs {
				counts[strings.TrimPrefix(r.State, "RUN_STATE_")]++
			}
		}
		ended := counts["FINISHED"] + counts["FAILED"] + counts["STOPPED"] + counts["CANCELED"] + counts["SKIPPED"] + counts["DISCARDED"]
		if ended == runs {
			break
		}
		if last := lastKill.Load(); last != 0 && time.Since(time.Unix(0, last)) > 10*time.Minute {
			close(done)
			t.Fatalf("runs still under way 10 minutes after the last kill: %v", counts)
		}
		time.Sleep(5 * time.Second)
	}
	close(done)
	elapsed := time.Since(start)

	facts := storeFacts(ctx, t, p, "RunFinished", "RunFailed", "RunStopped", "RunCanceled", "RunSkipped", "RunDiscarded")
	broken, twice, ended, total := facts.gaps, facts.endedTwice, facts.ended, facts.events
	if broken != 0 || twice != 0 || ended != runs {
		t.Errorf("event store: %d streams with gaps, %d runs ended twice, %d runs ended (want %d)", broken, twice, ended, runs)
	}
	t.Logf("soak: %d runs, %d stacks, %d launchers, a launcher killed every %s: %d kills; %v; 0 stuck; %s in all (%.2f runs/s); %d events, streams contiguous, no run ended twice",
		runs, stacks, launchers, every, kills.Load(), counts, elapsed.Round(time.Second), float64(runs)/elapsed.Seconds(), total)
}
