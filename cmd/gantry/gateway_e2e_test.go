package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// A launcher of a private pool connects to the server's NATS with its pool
// token and registers a worker through the gateway; the API then lists it.
func TestLauncherRegistersThroughTheGateway(t *testing.T) {
	srv := startServer(t)
	poolID, token, key := createPoolCLI(t, srv, "edge")
	tok := checkToken(t, srv, token, poolID, key)

	nc, err := nats.Connect(tok.NATSURL, bus.PoolCredentials(tok.PoolID, tok.PoolSecret))
	if err != nil {
		t.Fatalf("launcher connect: %v", err)
	}
	defer nc.Close()
	body, _ := json.Marshal(protocol.RegisterReport{Metadata: map[string]string{"instance_id": "i-0abc"}})
	msg, err := nc.Request(protocol.ReportSubject(tok.PoolID, protocol.KindRegister), body, 10*time.Second)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	var reply protocol.Reply
	if err := json.Unmarshal(msg.Data, &reply); err != nil || !reply.OK || !strings.HasPrefix(reply.WorkerID, "wkr_") {
		t.Fatalf("register reply %s (%v)", msg.Data, err)
	}

	deadline := time.Now().Add(15 * time.Second)
	for {
		out := srv.mustCLI(t, "pool", "workers", "edge")
		if strings.Contains(out, reply.WorkerID) && strings.Contains(out, "IDLE") && strings.Contains(out, "instance_id=i-0abc") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool workers does not list the registered worker %s as IDLE:\n%s", reply.WorkerID, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
