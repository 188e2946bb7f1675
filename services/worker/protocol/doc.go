// Package protocol defines, once, every message between the Gantry server
// and the launchers of worker pools: the NATS subjects and how to parse
// them, the report kinds and their bodies, the replies and their codes, the
// job a worker runs, the messages the server sends workers, the headers,
// the pool token a launcher starts with, and the paths of the worker HTTP
// API. The server side (gateway, scheduler, command layer, worker API
// handler, NATS permissions) and the worker side (launcher, executor, the
// worker API client) both import it; it imports only the domain packages
// and the standard library, so a worker links nothing of the server.
//
// # Subjects
//
// Every subject is under the launcher's pool, whose NATS permissions only let
// it publish there; the server takes the pool from the subject
// (ParseReportSubject, ParseHeartbeatSubject, ParseRunLogsSubject) and
// ignores any pool in a body. A worker of another pool is refused as unknown.
//
// # Reports (worker → server)
//
// Reports are NATS requests on ReportSubject(pool, kind) with a JSON
// body; the reply is a JSON Reply: {"ok": true, …} or {"ok": false,
// "error": "…", "code": "…"}. Kinds and bodies:
//
//	register        {"worker_id"?: "wkr_…", "metadata"?: {"k": "v"}}  → {"ok", "worker_id"}
//	run.job         {"worker_id", "run_id"}            → {"ok", "job": Job}
//	phase.started   {"worker_id", "run_id", "phase", "finished"?: {"phase", "exit_code", …}} → {"ok", "state_credentials"?: sealed}
//	phase.credentials {"worker_id", "run_id", "phase"} → {"ok", "state_credentials"?: sealed}
//	phase.finished  {"worker_id", "run_id", "phase", "exit_code", "duration_ms", "has_changes", "note"?} → {"ok", "run_status"}
//	run.finished    {"worker_id", "run_id", "finished"?} after the last phase and the after_* hooks
//	run.failed      {"worker_id", "run_id", "note"}     note is required
//	run.stopped     {"worker_id", "run_id", "note"?}    after a stop request was carried out
//	run.handed_back {"worker_id", "run_id", "note"?}    the pool was cycled before the run changed anything
//	exit            {"worker_id", "note"?}              the worker goes away (launcher shutdown)
//
// A report the server fails to handle (its database is down, say) is
// answered with the code "internal" and a message that names no internals,
// only a reference to the server's log. The launcher sends it again, with
// the same report id, backing off, for as long as the run's timeout allows:
// an outage of the server, its database or NATS delays a run, it does not
// end it. The reports that record a result (phase.finished, run.finished,
// run.failed, run.stopped, run.handed_back) are written to the launcher's
// disk before they are sent and kept until answered, so that a launcher
// restarted meanwhile sends them (as the worker that made them, heartbeating
// for it until they are answered, then reporting its exit).
//
// run.job returns what the worker needs to execute its run (Job): the
// stack's settings and variables, secret values sealed to the pool's public
// key (package seal). The answer to phase.started carries the phase's
// managed-state credentials sealed likewise (a JSON StateCredentials),
// or none when the stack's state is not managed or the phase does not touch
// state; phase.credentials asks for them on their own, for a phase the
// domain started by itself (APPLYING of an autodeploy run). The launcher
// passes them to that phase only, as TF_HTTP_USERNAME and TF_HTTP_PASSWORD. A phase.started refused
// because a stop was requested has the code "stop_requested": the launcher
// then ends the run STOPPED.
//
// A run report is accepted only from the worker the run is assigned to, in
// the subject's pool. When a report ends the run (FINISHED, FAILED, STOPPED)
// or leaves it UNCONFIRMED, the worker is freed in the same append; a run
// that ended also releases the stack lock and hands it to the next queued
// run. A report may carry a report id in the NATS header
// Gantry-Report-Id (HeaderReportID), the same on every retry: a repeat is
// answered with the first answer (kept for an hour), so a launcher whose
// request timed out sends it again without risk. Without an id, a repeated
// phase.finished is refused (code "illegal"): the phase already reported.
//
// # Messages to workers (server → worker)
//
// The server forwards what the event store records for a worker. An
// assignment goes to the worker on WorkerSubject(pool, worker, KindAssign)
// as an Assignment. A stop request goes to the run's worker on
// WorkerSubject(pool, worker, KindStop) as a StopMessage; a pool's cycle
// request goes to every worker of the pool on BroadcastSubject(pool) as
// a BroadcastMessage of kind "cycle". These are plain NATS messages,
// delivered at most once: a stop the launcher missed comes with the answer
// to its next heartbeat (stop_run_id), or shows as the refusal of its next
// phase.started; a run assigned and not started for 10 s comes with it too
// (assigned_run_id), and so does a cycle of the pool requested after the
// worker registered (cycle).
//
// # Heartbeats
//
// Heartbeats are messages on HeartbeatSubject(pool, worker) with a JSON
// HeartbeatReport (or an empty body). They may be plain publishes; sent as
// requests they get a Reply, with code "gone" when the worker is unknown to
// the server (never registered, of another pool, lost or exited): the
// launcher must then exit, for its supervisor to start a new one. A worker
// that sends no heartbeat for the server's heartbeat timeout (counted from
// its registration, and only while the server could receive and record
// heartbeats: an outage of NATS or of the database does not count) is
// marked lost: WorkerLost, and its run goes back to READY (RunUnassigned,
// when no phase had started) or ends FAILED with a note, releasing the
// stack lock. An exit hands the worker's run back or fails it in the same
// way. A heartbeat that says the worker is done with a run (settled_run_id,
// no run_id) which the server still has in a phase on that worker fails
// the run with a note: the worker has no report of its end.
//
// A pool's reset ends its workers (WorkerExited) and broadcasts a message
// of kind "reset": a launcher still connected with the old secret exits.
//
// # Run logs
//
// A worker publishes the masked lines of a phase's log, in order, on
// RunLogsSubject(pool, run), through JetStream, with the phase (run.Phase)
// in the header HeaderPhase: a message holds one line or several, joined
// by "\n", without a trailing newline. It stores each phase's full log
// through the worker HTTP API and waits for the acknowledgement of every
// message before it reports the phase finished.
//
// # Tracing
//
// An assignment message and every report may carry W3C trace context in
// the NATS headers traceparent and tracestate (lower case, as W3C names
// them). The scheduler sends the run's trace with the assignment; a
// launcher sends each report with the span of its run (a child of that
// trace, or the trace itself when it does not trace), and the gateway
// continues it, so that a run's trace follows it to the worker and back.
// Headers a launcher does not send are not needed: a report without them
// is answered the same.
//
// # Worker HTTP API
//
// Saved workspaces and phase logs go to the server over HTTP under
// WorkerAPIPrefix (WorkspacePath, PhaseLogPath), authenticated with the pool
// id and secret of the PoolToken as HTTP Basic user and password.
package protocol
