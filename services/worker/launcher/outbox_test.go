package launcher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// An outbox keeps reports across a launcher's death: held by its live
// launcher only, found by the next one with its reports in order and the
// mark of the run under way.
func TestOutboxOutlivesItsLauncher(t *testing.T) {
	root := t.TempDir()
	o, err := openOutbox(root, "wkr_1")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	first := &pendingReport{Kind: "phase.finished", ReportID: "a", WorkerID: "wkr_1", RunID: "run_1", Body: json.RawMessage(`{"phase":"PLANNING"}`), Deadline: deadline}
	second := &pendingReport{Kind: "run.finished", ReportID: "b", WorkerID: "wkr_1", RunID: "run_1", Body: json.RawMessage(`{}`), Deadline: deadline}
	for _, r := range []*pendingReport{first, second} {
		if err := o.put(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.setRun(runMark{RunID: "run_1", Deadline: deadline}); err != nil {
		t.Fatal(err)
	}
	if _, err := openOutbox(root, "wkr_1"); err == nil {
		t.Fatal("a second launcher opened a live launcher's outbox")
	}
	if orphans, err := orphanOutboxes(root); err != nil || len(orphans) != 0 {
		t.Fatalf("orphans of a live launcher: %d, %v", len(orphans), err)
	}
	// A write torn by a crash is not a report.
	if err := os.WriteFile(filepath.Join(o.dir, "000000009.report.tmp"), []byte(`{"kind"`), 0o600); err != nil {
		t.Fatal(err)
	}
	o.close(true) // the launcher dies: its reports stay

	orphans, err := orphanOutboxes(root)
	if err != nil || len(orphans) != 1 {
		t.Fatalf("orphans after the launcher died: %d, %v", len(orphans), err)
	}
	adopted := orphans[0]
	if adopted.workerID() != "wkr_1" {
		t.Fatalf("adopted the outbox of %s", adopted.workerID())
	}
	pending, err := adopted.pending()
	if err != nil || len(pending) != 2 || pending[0].ReportID != "a" || pending[1].ReportID != "b" || !pending[0].Deadline.Equal(deadline) {
		t.Fatalf("pending reports: %+v, %v", pending, err)
	}
	if m, ok := adopted.run(); !ok || m.RunID != "run_1" {
		t.Fatalf("run mark: %+v, %v", m, ok)
	}
	// A new report continues the numbering: it comes after the old ones.
	third := &pendingReport{Kind: "run.failed", ReportID: "c", Deadline: deadline}
	if err := adopted.put(third); err != nil {
		t.Fatal(err)
	}
	for _, r := range pending {
		adopted.done(r)
	}
	if rest, _ := adopted.pending(); len(rest) != 1 || rest[0].ReportID != "c" {
		t.Fatalf("after two answers: %+v", rest)
	}
	adopted.done(third)
	if err := adopted.setRun(runMark{}); err != nil {
		t.Fatal(err)
	}
	adopted.close(true)
	if _, err := os.Stat(adopted.dir); !os.IsNotExist(err) {
		t.Fatalf("an emptied outbox was left: %v", err)
	}
}

// A state kept for lack of a server keeps its outbox when the rest is done.
func TestOutboxKeepsAStateNotStored(t *testing.T) {
	o, err := openOutbox(t.TempDir(), "wkr_2")
	if err != nil {
		t.Fatal(err)
	}
	path, err := o.keepState("run_2", []byte(`{"version":4}`))
	if err != nil {
		t.Fatal(err)
	}
	o.close(true)
	if data, err := os.ReadFile(path); err != nil || string(data) != `{"version":4}` {
		t.Fatalf("kept state: %q, %v", data, err)
	}
}
