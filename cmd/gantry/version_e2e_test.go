package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/testenv/await"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// TestPoolWorkersShowLauncherVersions: a launcher reports its version at
// registration; `gantry pool workers` shows it and flags the launchers older
// than the server (semantic versions; a development build is never flagged).
func TestPoolWorkersShowLauncherVersions(t *testing.T) {
	srv := startServer(t, func(c *serverConfig) { c.version = "v1.4.0" })
	pool := startLauncherPool(t, srv, "versions", 1) // a real launcher: this test binary's version
	tok, err := protocol.DecodePoolToken(strings.TrimPrefix(pool.env[0], "GANTRY_TOKEN="))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(tok.NATSURL, bus.PoolCredentials(tok.PoolID, tok.PoolSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	registerVersion := func(version string) string {
		t.Helper()
		body, _ := json.Marshal(protocol.RegisterReport{Version: version})
		msg, err := nc.Request(protocol.ReportSubject(tok.PoolID, protocol.KindRegister), body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var reply protocol.Reply
		if err := json.Unmarshal(msg.Data, &reply); err != nil || !reply.OK {
			t.Fatalf("register %s: %s (%v)", version, msg.Data, err)
		}
		return reply.WorkerID
	}
	old, current := registerVersion("v1.3.2"), registerVersion("v1.4.0")

	var out string
	await.Until(t, 15*time.Second, "the registered workers in pool workers", func() bool {
		out = srv.mustCLI(t, "pool", "workers", pool.id)
		return strings.Contains(out, old) && strings.Contains(out, current)
	})
	lines := map[string]string{}
	for _, l := range srvLines(out) {
		lines[strings.Fields(l)[0]] = l
	}
	if l := lines[old]; !strings.Contains(l, "v1.3.2 (older than the server's v1.4.0)") {
		t.Errorf("the old launcher is not flagged: %q", l)
	}
	if l := lines[current]; !strings.Contains(l, "v1.4.0") || strings.Contains(l, "older") {
		t.Errorf("the current launcher: %q", l)
	}
	delete(lines, "ID")
	delete(lines, old)
	delete(lines, current)
	if len(lines) != 1 {
		t.Fatalf("want the launcher's line besides the two registered:\n%s", out)
	}
	var launcher string
	for _, l := range lines {
		launcher = l
	}
	if self := binaryVersion(); self == "" || !strings.Contains(launcher, " "+self+" ") || strings.Contains(launcher, "older") {
		t.Errorf("the launcher process should report %q, unflagged: %q", self, launcher)
	}

	var listed struct {
		ServerVersion string `json:"server_version"`
		Workers       []struct {
			ID               string `json:"id"`
			LauncherVersion  string `json:"launcher_version"`
			LauncherOutdated bool   `json:"launcher_outdated"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(srv.mustCLI(t, "-o", "json", "pool", "workers", pool.id)), &listed); err != nil {
		t.Fatal(err)
	}
	if listed.ServerVersion != "v1.4.0" {
		t.Errorf("server version %q", listed.ServerVersion)
	}
	for _, w := range listed.Workers {
		if want := w.ID == old; w.LauncherOutdated != want {
			t.Errorf("worker %s (%s): outdated %v, want %v", w.ID, w.LauncherVersion, w.LauncherOutdated, want)
		}
	}
}
