package protocol

import "strings"

// The subjects of worker pools and runs. Every subject of a pool starts with
// "gantry.pool.<pool>.", so that a launcher's NATS permissions (package bus)
// can confine it to its own pool by prefix:
//
//	gantry.pool.<pool>.worker.<worker>.<kind>  server → one worker: assignments, drain, stop
//	gantry.pool.<pool>.broadcast               server → every worker of the pool: cycle
//	gantry.pool.<pool>.heartbeat.<worker>      worker → server
//	gantry.pool.<pool>.report.<kind…>          worker → server: registration, phase reports
//	gantry.pool.<pool>.inbox.>                 replies to the launcher's own requests
//	gantry.pool.<pool>.logs.<run>              worker → server and clients: live run logs
//
// A launcher may publish only on its pool's heartbeat, report and log
// subjects, so the pool in those subjects is authenticated: consumers take
// the pool from the subject (ParseHeartbeatSubject, ParseReportSubject,
// ParseRunLogsSubject), never from the payload, and read a run's log only
// from the pools the run was assigned to.
//
// Pool, worker and run arguments are ids as domain/ids validates them:
// letters, digits, '_' and '-', which are single subject tokens. Kinds are
// one or more tokens of the same characters, separated by dots.
const poolRoot = "gantry.pool"

// Subject patterns the server subscribes to, across all pools and runs.
const (
	// AllHeartbeats matches the heartbeat of every worker of every pool.
	AllHeartbeats = poolRoot + ".*.heartbeat.*"
	// AllReports matches every report of every pool.
	AllReports = poolRoot + ".*.report.>"
	// AllRunLogs matches the live logs of every run of every pool.
	AllRunLogs = poolRoot + ".*.logs.*"
)

func poolSubject(pool, rest string) string { return poolRoot + "." + pool + "." + rest }

// WorkerSubject is where the server sends one worker a message of the given
// kind ("assign", "drain", "stop", …).
func WorkerSubject(pool, worker, kind string) string {
	return poolSubject(pool, "worker."+worker+"."+kind)
}

// WorkerSubjects matches every message to every worker of pool: what a
// launcher subscribes to (and filters by its workers' ids).
func WorkerSubjects(pool string) string { return poolSubject(pool, "worker.>") }

// BroadcastSubject is where the server tells every worker of pool at once,
// e.g. to cycle.
func BroadcastSubject(pool string) string { return poolSubject(pool, "broadcast") }

// HeartbeatSubject is where worker of pool sends its heartbeats.
func HeartbeatSubject(pool, worker string) string { return poolSubject(pool, "heartbeat."+worker) }

// ReportSubject is where a launcher of pool sends a report or request of the
// given kind (KindRegister, KindPhaseStarted, …) to the server.
func ReportSubject(pool, kind string) string { return poolSubject(pool, "report."+kind) }

// PoolInboxPrefix is the inbox prefix a launcher of pool must use: it may not
// subscribe to the default "_INBOX.>", where it could read replies meant for
// other clients (JetStream deliveries of the EVENTS stream among them).
// bus.PoolCredentials sets it.
func PoolInboxPrefix(pool string) string { return poolSubject(pool, "inbox") }

// RunLogsSubject is where a worker of pool publishes the live log of run.
func RunLogsSubject(pool, run string) string { return poolSubject(pool, "logs."+run) }

// PoolRunLogs matches the live logs of every run of pool's workers.
func PoolRunLogs(pool string) string { return poolSubject(pool, "logs.*") }

// ParseHeartbeatSubject returns the pool and worker of a heartbeat subject.
func ParseHeartbeatSubject(subject string) (pool, worker string, ok bool) {
	pool, rest, ok := splitPoolSubject(subject)
	if !ok {
		return "", "", false
	}
	worker, found := strings.CutPrefix(rest, "heartbeat.")
	if !found || !validTokens(worker, false) {
		return "", "", false
	}
	return pool, worker, true
}

// ParseReportSubject returns the pool and kind of a report subject.
func ParseReportSubject(subject string) (pool, kind string, ok bool) {
	pool, rest, ok := splitPoolSubject(subject)
	if !ok {
		return "", "", false
	}
	kind, found := strings.CutPrefix(rest, "report.")
	if !found || !validTokens(kind, true) {
		return "", "", false
	}
	return pool, kind, true
}

// ParseRunLogsSubject returns the pool and run of a run log subject.
func ParseRunLogsSubject(subject string) (pool, run string, ok bool) {
	pool, rest, ok := splitPoolSubject(subject)
	if !ok {
		return "", "", false
	}
	run, found := strings.CutPrefix(rest, "logs.")
	if !found || !validTokens(run, false) {
		return "", "", false
	}
	return pool, run, true
}

// splitPoolSubject splits "gantry.pool.<pool>.<rest>".
func splitPoolSubject(subject string) (pool, rest string, ok bool) {
	after, found := strings.CutPrefix(subject, poolRoot+".")
	if !found {
		return "", "", false
	}
	pool, rest, found = strings.Cut(after, ".")
	if !found || !validTokens(pool, false) {
		return "", "", false
	}
	return pool, rest, true
}

// validTokens reports whether s is one subject token of letters, digits, '_'
// and '-' (or, with several, dot-separated tokens of them): no wildcards, no
// empty tokens.
func validTokens(s string, several bool) bool {
	if s == "" {
		return false
	}
	for _, token := range strings.Split(s, ".") {
		if token == "" {
			return false
		}
		for _, r := range token {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return false
			}
		}
	}
	return several || !strings.Contains(s, ".")
}
