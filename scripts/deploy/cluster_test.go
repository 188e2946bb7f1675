package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterSurvivesANATSNodeAndAServer runs the compose project on a
// three-node NATS cluster (cluster.yml: JetStream, EVENTS and RUN_LOGS
// replicated three times), queues 50 runs over 10 stacks through both
// servers, and stops one NATS node and one server while they are in flight.
// Every run finishes; every event stream is contiguous from version 1, no
// run ends twice, and JetStream's EVENTS stream holds each stored event
// exactly once.
func TestClusterSurvivesANATSNodeAndAServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs a NATS cluster")
	}
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := startProject(t, ctx, []string{"nats", "nats-2", "nats-3"}, "cluster.yml")
	p.startLaunchers()

	const stacks, perStack = 10, 5
	for i := range stacks {
		p.cli("server-1", "stack", "create", fmt.Sprintf("s%d", i), "--repo", p.repoURL, "--pool", "builders", "--managed-state", "--autodeploy")
	}
	// One NATS node and one server go away with runs in flight: the node
	// that leads the EVENTS stream, and the server whose relay publishes.
	nodes := map[string]string{"nats-1": "nats", "nats-2": "nats-2", "nats-3": "nats-3"}
	var urls []string
	for _, svc := range nodes {
		urls = append(urls, "nats://"+p.port(svc, "4222"))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.UserInfo("gantry", envFileValue(t, p, "GANTRY_NATS_PASSWORD")), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	leader := nodes[st.CachedInfo().Cluster.Leader]
	if leader == "" {
		t.Fatalf("EVENTS has no leader among %v: %+v", nodes, st.CachedInfo().Cluster)
	}
	relay := "server-2"
	// The servers log JSON on stderr, which docker logs keeps apart.
	if logs, err := exec.CommandContext(ctx, "docker", "logs", strings.TrimSpace(p.compose("ps", "-q", "server-1"))).CombinedOutput(); err != nil {
		t.Fatalf("docker logs server-1: %v", err)
	} else if strings.Contains(string(logs), `"msg":"relay active"`) {
		relay = "server-1"
	}
	survivor := map[string]string{"server-1": "server-2", "server-2": "server-1"}[relay]
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, stacks*perStack)
	for i := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perStack {
				server := []string{"server-1", "server-2"}[(i+j)%2]
				if out, err := p.tryCLI(server, "run", "trigger", fmt.Sprintf("s%d", i)); err != nil {
					errs <- fmt.Errorf("trigger s%d through %s: %v: %s", i, server, err, out)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d runs queued in %s", stacks*perStack, time.Since(start).Round(100*time.Millisecond))

	p.compose("stop", "-t", "0", leader, relay)
	t.Logf("%s (leader of EVENTS) and %s (active relay) stopped %s after the queueing began", leader, relay, time.Since(start).Round(100*time.Millisecond))

	type listed struct {
		Runs []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"runs"`
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(2 * time.Second) {
		finished, other := 0, []string{}
		for i := range stacks {
			var l listed
			if err := json.Unmarshal([]byte(p.cli(survivor, "run", "list", fmt.Sprintf("s%d", i), "-o", "json")), &l); err != nil {
				t.Fatal(err)
			}
			for _, r := range l.Runs {
				if strings.HasSuffix(r.State, "FINISHED") {
					finished++
				} else {
					other = append(other, r.ID+" "+r.State)
				}
			}
		}
		if finished == stacks*perStack {
			t.Logf("all %d runs FINISHED %s after the queueing began", finished, time.Since(start).Round(100*time.Millisecond))
			break
		}
		for _, o := range other {
			if strings.HasSuffix(o, "FAILED") || strings.HasSuffix(o, "STOPPED") || strings.HasSuffix(o, "CANCELED") {
				t.Fatalf("run %s; %d finished", o, finished)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d runs finished; the others: %v", finished, stacks*perStack, other)
		}
	}

	// The event store: every stream contiguous from 1, no run ended twice.
	facts := storeFacts(ctx, t, p, "RunFinished")
	broken, twice, ended, total := facts.gaps, facts.endedTwice, facts.ended, facts.events
	if broken != 0 || twice != 0 || ended != stacks*perStack {
		t.Errorf("event store: %d streams with gaps, %d runs finished twice, %d runs finished (want %d)", broken, twice, ended, stacks*perStack)
	}

	// JetStream: the EVENTS stream, on the nodes left, holds each event once.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		st, err := js.Stream(ctx, "EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		if info.Config.Replicas != 3 {
			t.Fatalf("EVENTS has %d replicas, want 3", info.Config.Replicas)
		}
		if info.State.Msgs == uint64(total) {
			t.Logf("EVENTS holds the %d stored events once each (replicas %d, cluster leader %s)", total, info.Config.Replicas, info.Cluster.Leader)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("EVENTS holds %d messages, the store %d events", info.State.Msgs, total)
		}
	}
}

// envFileValue reads a setting init-env wrote.
func envFileValue(t *testing.T, p *project, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(p.dir, "config", ".env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+"="); ok {
			return v
		}
	}
	t.Fatalf("%s is not in the env file", name)
	return ""
}

// storeCounts are what the deployment's event store says of its runs.
type storeCounts struct {
	gaps       int // streams whose versions are not 1, 2, … without a gap
	endedTwice int // runs with more than one of the end events
	ended      int // runs with one or more
	events     int // events in all
}

// storeFacts reads storeCounts from the compose project's PostgreSQL, a
// run's end being any of the event types ends.
func storeFacts(ctx context.Context, t *testing.T, p *project, ends ...string) storeCounts {
	t.Helper()
	pg, err := pgx.Connect(ctx, fmt.Sprintf("postgres://gantry:%s@%s/gantry?sslmode=disable", envFileValue(t, p, "GANTRY_POSTGRES_PASSWORD"), p.port("postgres", "5432")))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	var c storeCounts
	if err := pg.QueryRow(ctx, `SELECT count(*) FROM (SELECT stream_id FROM events GROUP BY stream_id
		HAVING count(*) <> max(version) OR min(version) <> 1) s`).Scan(&c.gaps); err != nil {
		t.Fatal(err)
	}
	if err := pg.QueryRow(ctx, `SELECT count(*) FILTER (WHERE n > 1), count(*) FROM
		(SELECT stream_id, count(*) AS n FROM events WHERE event_type = ANY($1) GROUP BY stream_id) s`, ends).Scan(&c.endedTwice, &c.ended); err != nil {
		t.Fatal(err)
	}
	if err := pg.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&c.events); err != nil {
		t.Fatal(err)
	}
	return c
}
