package protocol

import "testing"

func TestSubjects(t *testing.T) {
	for got, want := range map[string]string{
		WorkerSubject("wp_a", "wkr_1", "assign"): "gantry.pool.wp_a.worker.wkr_1.assign",
		WorkerSubjects("wp_a"):                   "gantry.pool.wp_a.worker.>",
		BroadcastSubject("wp_a"):                 "gantry.pool.wp_a.broadcast",
		HeartbeatSubject("wp_a", "wkr_1"):        "gantry.pool.wp_a.heartbeat.wkr_1",
		ReportSubject("wp_a", "phase"):           "gantry.pool.wp_a.report.phase",
		PoolInboxPrefix("wp_a"):                  "gantry.pool.wp_a.inbox",
		RunLogsSubject("wp_a", "run_1"):          "gantry.pool.wp_a.logs.run_1",
		PoolRunLogs("wp_a"):                      "gantry.pool.wp_a.logs.*",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestParseSubjects(t *testing.T) {
	if pool, worker, ok := ParseHeartbeatSubject(HeartbeatSubject("wp_a-1", "wkr_b_2")); !ok || pool != "wp_a-1" || worker != "wkr_b_2" {
		t.Errorf("ParseHeartbeatSubject = %q, %q, %v", pool, worker, ok)
	}
	if pool, kind, ok := ParseReportSubject(ReportSubject("wp_a", "phase.done")); !ok || pool != "wp_a" || kind != "phase.done" {
		t.Errorf("ParseReportSubject = %q, %q, %v", pool, kind, ok)
	}
	if pool, run, ok := ParseRunLogsSubject(RunLogsSubject("wp_a", "run_01J")); !ok || pool != "wp_a" || run != "run_01J" {
		t.Errorf("ParseRunLogsSubject = %q, %q, %v", pool, run, ok)
	}
	for _, bad := range []string{
		"gantry.pool.wp_a.heartbeat", "gantry.pool.wp_a.heartbeat.w.x", "gantry.pool.*.heartbeat.w",
		"gantry.pool.wp_a.heartbeat.*", "gantry.pool..heartbeat.w", "gantry.pools.wp_a.heartbeat.w",
		ReportSubject("wp_a", "x"),
	} {
		if _, _, ok := ParseHeartbeatSubject(bad); ok {
			t.Errorf("ParseHeartbeatSubject(%q) accepted it", bad)
		}
	}
	for _, bad := range []string{"gantry.pool.wp_a.report", "gantry.pool.wp_a.report.", "gantry.pool.wp_a.report.a..b", "gantry.pool.wp_a.report.>", HeartbeatSubject("wp_a", "w")} {
		if _, _, ok := ParseReportSubject(bad); ok {
			t.Errorf("ParseReportSubject(%q) accepted it", bad)
		}
	}
	for _, bad := range []string{"gantry.pool.wp_a.logs", "gantry.pool.wp_a.logs.a.b", "gantry.pool.wp_a.logs.*", "gantry.pool.*.logs.r",
		"gantry.run.r.logs", HeartbeatSubject("wp_a", "w")} {
		if _, _, ok := ParseRunLogsSubject(bad); ok {
			t.Errorf("ParseRunLogsSubject(%q) accepted it", bad)
		}
	}
}
