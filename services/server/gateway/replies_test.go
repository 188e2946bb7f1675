package gateway_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// A report sent again with the same report id gets the first answer; sent
// again without one, it is refused as a repeat.
func TestRepeatedReportGetsTheFirstAnswer(t *testing.T) {
	e := newEnv(t)
	pool, l := e.createPool()
	w := l.register(nil)
	runID := e.assignedRun(e.createStack(pool), run.Proposed, pool, w)
	for _, p := range []run.Phase{run.PhasePreparing, run.PhaseInitializing} {
		l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: p})
		l.mustReport(protocol.KindPhaseFinished, protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: p})
	}
	l.mustReport(protocol.KindPhaseStarted, protocol.PhaseStartedReport{WorkerID: w, RunID: runID, Phase: run.PhasePlanning})
	send := func(id string) protocol.Reply {
		t.Helper()
		m := nats.NewMsg(protocol.ReportSubject(pool, protocol.KindPhaseFinished))
		m.Data, _ = json.Marshal(protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhasePlanning, DurationMS: 5})
		if id != "" {
			m.Header.Set(protocol.HeaderReportID, id)
		}
		res, err := l.nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r protocol.Reply
		if err := json.Unmarshal(res.Data, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := send("report-1")
	if !first.OK || first.RunStatus != run.Finished {
		t.Fatalf("first answer %+v, want OK and FINISHED", first)
	}
	_, before := loadRun(t, e.store, runID)
	if again := send("report-1"); !reflect.DeepEqual(again, first) {
		t.Fatalf("repeat answered %+v, want %+v", again, first)
	}
	if _, after := loadRun(t, e.store, runID); after != before {
		t.Fatalf("the repeat changed the run: version %d → %d", before, after)
	}
	if r := send(""); r.OK || r.Code != protocol.CodeNotYours && r.Code != protocol.CodeIllegal {
		t.Fatalf("a repeat without an id: %+v, want a refusal", r)
	}
	// Another pool's launcher cannot read this pool's answers.
	_, other := e.createPool()
	m := nats.NewMsg(protocol.ReportSubject(other.pool, protocol.KindPhaseFinished))
	m.Data, _ = json.Marshal(protocol.PhaseFinishedReport{WorkerID: w, RunID: runID, Phase: run.PhasePlanning})
	m.Header.Set(protocol.HeaderReportID, "report-1")
	res, err := other.nc.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r protocol.Reply
	if err := json.Unmarshal(res.Data, &r); err != nil || r.OK {
		t.Fatalf("another pool got %s", res.Data)
	}
}
