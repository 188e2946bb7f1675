// Package launcher is the worker side of a worker pool: a launcher joins
// its pool with the pool token and private key, registers one worker,
// sends heartbeats, and runs the runs the scheduler assigns it, one at a
// time, with the executor (in a container of the stack's runner image, or
// as processes on the host). It reaches the server only through NATS
// (its pool's subjects; see services/worker/protocol for the protocol) and the
// server's worker HTTP API (saved workspaces and phase logs).
package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/tracing"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
	"github.com/gantryhq/gantry/services/worker/workerclient"
)

// Uploads is where a launcher stores what outlives its runs on this
// machine: the sealed workspaces of UNCONFIRMED runs and each phase's full
// log. The server's worker HTTP API client satisfies it.
type Uploads interface {
	executor.WorkspaceStore
	StorePhaseLog(ctx context.Context, runID string, phase run.Phase, log []byte) error
}

// ErrRefused is matched by Run's error when the server refuses the
// launcher's credentials: a bad or reset token.
var ErrRefused = errors.New("the server refused the pool's credentials")

// errHandedBack cancels a run the launcher hands back to the queue.
var errHandedBack = errors.New("the worker pool was cycled: the run goes back to the queue")

// Launcher runs one worker of a pool.
type Launcher struct {
	cfg     Config
	uploads Uploads
	// logp is the launcher's logger, with the worker id once registered.
	logp atomic.Pointer[slog.Logger]
	exec *executor.Executor

	nc *nats.Conn
	js jetstream.JetStream

	mu       sync.Mutex
	workerID string
	outbox   *outbox       // the worker's reports kept until answered
	current  *assignment   // the run under way, if any
	leaving  bool          // no new work: shutting down
	cycled   chan struct{} // closed when the pool is cycled
	cycle    sync.Once
	// reset is closed when the pool's secret changed (a reset, or NATS
	// refusing the launcher's reconnection): the launcher exits at once.
	reset     chan struct{}
	resetOnce sync.Once
	// hbRun and hbSettled are what heartbeats tell (protocol.HeartbeatReport).
	hbRun, hbSettled string
	// checking is set while the pool's credentials are checked after NATS
	// refused them.
	checking atomic.Bool
	assigned chan queuedRun
	stdoutMu sync.Mutex
	// queued counts assignments taken and not yet done (waiting or under way).
	queued int
	// tracer traces each run (a no-op tracer when tracing is off: the
	// server's trace context still passes through to the reports).
	tracer trace.Tracer
}

// queuedRun is an assignment waiting for the runner, with the trace the
// server sent it in (invalid when none came).
type queuedRun struct {
	a     protocol.Assignment
	trace trace.SpanContext
}

// assignment is a run under way on this worker.
type assignment struct {
	runID string
	stop  func() // stops the run as a user's stop does
	fail  context.CancelCauseFunc
	// handBack stops the run to hand it back to the queue, if it has not
	// changed anything yet; false when it may have.
	handBack func() bool
}

// New checks cfg and returns a Launcher; Run connects and works.
func New(cfg Config, uploads Uploads) (*Launcher, error) {
	if cfg.PoolKey == nil {
		return nil, errors.New("launcher: the pool's private key is required")
	}
	if cfg.Token.PoolID == "" || cfg.Token.NATSURL == "" {
		return nil, errors.New("launcher: a pool token is required")
	}
	if uploads == nil {
		return nil, errors.New("launcher: an upload client is required")
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "launcher", "pool_id", cfg.Token.PoolID)
	ecfg := cfg.Executor
	ecfg.PoolKey = cfg.PoolKey
	ecfg.Workspaces = uploads
	if ecfg.Docker != nil {
		d := *ecfg.Docker
		d.Labels = map[string]string{executor.LabelPool: cfg.Token.PoolID}
		for k, v := range ecfg.Docker.Labels {
			d.Labels[k] = v
		}
		ecfg.Docker = &d
	}
	exec, err := executor.New(ecfg, log)
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	l := &Launcher{cfg: cfg, uploads: uploads, exec: exec, cycled: make(chan struct{}), reset: make(chan struct{}),
		assigned: make(chan queuedRun, 4), tracer: tracing.Tracer(cfg.TracerProvider, "launcher")}
	l.logp.Store(log)
	return l, nil
}

// Close releases a launcher that was made and never run; Run releases its
// own.
func (l *Launcher) Close() { l.exec.Close() }

// logger is the launcher's logger; it may be used from any goroutine.
func (l *Launcher) logger() *slog.Logger { return l.logp.Load() }

// WorkerID is the registered worker's id, "" before registration.
func (l *Launcher) WorkerID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.workerID
}

// Run connects to the pool, registers the worker and runs what it is
// assigned until ctx ends or the pool is cycled. Then it takes no new work,
// lets a run under way go on for the shutdown grace (CycleGrace after a
// cycle, when a run that changed nothing yet is handed back rather than
// failed), fails it if it is not done by then, tells the server the worker
// exits, and returns. A token or key the server refuses returns an error
// matching ErrRefused at once; so does a reset of the pool, which stops the
// run under way (the server ended the worker already).
//
// Reports of an earlier launcher of this host that died before they were
// answered (its outbox under the work directory) are sent on its workers'
// behalf meanwhile.
func (l *Launcher) Run(ctx context.Context) error {
	defer l.exec.Close()
	if err := l.connect(); err != nil {
		return err
	}
	defer l.nc.Close()
	subs, err := l.subscribe()
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	// A launcher of this host killed with SIGKILL left its containers.
	if n, err := l.exec.RemoveOrphans(ctx); err != nil {
		l.logger().Warn("could not remove the containers of dead launchers", "err", err)
	} else if n > 0 {
		l.logger().Info("removed the containers of dead launchers", "count", n)
	}
	if err := l.register(ctx); err != nil {
		return err
	}
	root := outboxRoot(l.cfg.Executor.WorkDir, l.cfg.Token.PoolID)
	o, err := openOutbox(root, l.WorkerID())
	if err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	l.mu.Lock()
	l.outbox = o
	l.mu.Unlock()
	defer o.close(true)
	l.exec.WarmUp(l.WorkerID())
	hbCtx, stopHeartbeats := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { l.heartbeats(hbCtx) })
	wg.Go(func() { l.adoptOrphans(hbCtx, root) })
	defer func() {
		stopHeartbeats()
		wg.Wait()
	}()

	// One run at a time: the runner takes assignments in order. An
	// assignment can arrive while the previous run's last report is still
	// being answered (the report freed the worker); it waits its turn.
	var running sync.WaitGroup
	stopRunner := make(chan struct{})
	running.Go(func() {
		for {
			select {
			case <-stopRunner:
				return
			case q := <-l.assigned:
				if l.isLeaving() {
					return // the worker's exit hands the run back
				}
				l.execute(q.a, q.trace)
				l.mu.Lock()
				l.queued--
				l.mu.Unlock()
			}
		}
	})
	grace, cycled := l.cfg.ShutdownGrace, false
	select {
	case <-ctx.Done():
	case <-l.cycled:
		grace, cycled = CycleGrace, true
	case <-l.reset:
		// The server ended this worker already, and its run: stop at once.
		l.leave(&running, stopRunner, 0, false, "the worker pool was reset")
		return fmt.Errorf("%w: the worker pool was reset; start the launcher with the new token and key", ErrRefused)
	}
	note := "the launcher is shutting down"
	if cycled {
		note = "the worker pool was cycled"
	}
	l.leave(&running, stopRunner, grace, cycled, note)
	l.exit(note)
	return nil
}

// connect opens the launcher's NATS connection with the pool's credentials.
func (l *Launcher) connect() error {
	opts := []nats.Option{
		bus.PoolCredentials(l.cfg.Token.PoolID, l.cfg.Token.PoolSecret),
		nats.Name("gantry-launcher " + l.cfg.Token.PoolID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				l.logger().Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { l.logger().Info("reconnected to NATS") }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			l.logger().Warn("NATS error", "err", err)
			l.credentialsRefused(err)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { l.credentialsRefused(err) }),
		// Refused credentials do not end the connection: they may be a
		// reset, or an auth callout not back yet after a NATS restart.
		// credentialsRefused tells which.
		nats.IgnoreAuthErrorAbort(),
	}
	nc, err := nats.Connect(l.cfg.Token.NATSURL, opts...)
	if err != nil {
		if refusedCredentials(err) {
			return fmt.Errorf("connect to %s as pool %s: %w: the token is wrong, or the pool was reset or deleted", l.cfg.Token.NATSURL, l.cfg.Token.PoolID, ErrRefused)
		}
		return fmt.Errorf("connect to %s: %w", l.cfg.Token.NATSURL, err)
	}
	// A live log message whose acknowledgement is lost (its stream's
	// leader died with it) must not hold its phase's result back until the
	// run's deadline: the phase's stored log has every line anyway.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(liveLogAckTimeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("connect to %s: %w", l.cfg.Token.NATSURL, err)
	}
	l.nc, l.js = nc, js
	return nil
}

// credentialsProbe is a run id no run has: reading its workspace through
// the worker API answers 404 to the pool's current credentials, 401 to old
// ones.
const credentialsProbe = "run_credentials-probe"

// credentialsRefused checks, once at a time, whether NATS refusing the
// pool's credentials (err) means they are void: the pool was reset (or
// deleted) while the launcher was connected, or its auth callout is not
// back yet after a restart. The server's worker API, which checks them
// too, tells which.
func (l *Launcher) credentialsRefused(err error) {
	if err == nil || !refusedCredentials(err) || !l.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.checking.Store(false)
		l.checkCredentials()
	}()
}

// checkCredentials asks the worker API whether the pool's credentials still
// hold, and makes the launcher exit if they do not.
func (l *Launcher) checkCredentials() {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	rc, err := l.uploads.Open(ctx, credentialsProbe)
	if rc != nil {
		_ = rc.Close()
	}
	var status *workerclient.StatusError
	if errors.As(err, &status) && status.Code == http.StatusUnauthorized {
		l.logger().Error("the server refused the pool's credentials: the pool was reset or deleted; exiting")
		l.resetOnce.Do(func() { close(l.reset) })
		return
	}
	l.logger().Warn("NATS refused the pool's credentials, which the server still takes: reconnecting", "err", err)
}

// refusedCredentials reports whether NATS refused the pool's credentials.
func refusedCredentials(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization")
}

// subscribe listens to what the server tells the pool's workers. The
// worker id is not known yet: messages are filtered by it as they come.
func (l *Launcher) subscribe() ([]*nats.Subscription, error) {
	pool := l.cfg.Token.PoolID
	workerMsgs, err := l.nc.Subscribe(protocol.WorkerSubjects(pool), l.workerMessage)
	if err != nil {
		return nil, fmt.Errorf("subscribe to the pool's worker messages: %w", err)
	}
	broadcasts, err := l.nc.Subscribe(protocol.BroadcastSubject(pool), l.broadcast)
	if err != nil {
		_ = workerMsgs.Unsubscribe()
		return nil, fmt.Errorf("subscribe to the pool's broadcasts: %w", err)
	}
	if err := l.nc.Flush(); err != nil {
		_ = workerMsgs.Unsubscribe()
		_ = broadcasts.Unsubscribe()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return []*nats.Subscription{workerMsgs, broadcasts}, nil
}

// register registers the worker, with the launcher's metadata.
func (l *Launcher) register(ctx context.Context) error {
	var reply protocol.Reply
	if err := l.request(ctx, protocol.KindRegister, protocol.RegisterReport{Metadata: l.cfg.Metadata, Version: l.cfg.Version}, &reply); err != nil {
		return fmt.Errorf("register a worker: %w", err)
	}
	l.mu.Lock()
	l.workerID = reply.WorkerID
	l.logp.Store(l.logger().With("worker_id", reply.WorkerID))
	l.mu.Unlock()
	l.logger().Info("worker registered", "metadata_keys", len(l.cfg.Metadata), "version", l.cfg.Version)
	return nil
}

// workerMessage handles a message to one of the pool's workers: assignments
// and stop requests for this worker, ignoring the others'.
func (l *Launcher) workerMessage(m *nats.Msg) {
	pool := l.cfg.Token.PoolID
	id := l.WorkerID()
	if id == "" {
		return
	}
	switch m.Subject {
	case protocol.WorkerSubject(pool, id, protocol.KindAssign):
		var a protocol.Assignment
		if err := json.Unmarshal(m.Data, &a); err != nil || a.RunID == "" {
			l.logger().Warn("malformed assignment", "err", err)
			return
		}
		l.enqueue(a, trace.SpanContextFromContext(tracing.Extract(context.Background(), m.Header)), false)
	case protocol.WorkerSubject(pool, id, protocol.KindStop):
		var s protocol.StopMessage
		if err := json.Unmarshal(m.Data, &s); err != nil {
			l.logger().Warn("malformed stop message", "err", err)
			return
		}
		l.stopRun(s.RunID)
	}
}

// enqueue hands an assignment to the runner. missed marks one that came
// with a heartbeat's answer, not as a message: it is taken only when the
// worker has nothing under way or waiting (else it is that very run).
func (l *Launcher) enqueue(a protocol.Assignment, parent trace.SpanContext, missed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.leaving:
		// The worker's exit hands the run back to the queue.
		l.logger().Info("assignment while leaving, not taken", "run_id", a.RunID)
		return
	case missed && l.queued > 0:
		return
	}
	select {
	case l.assigned <- queuedRun{a: a, trace: parent}:
		l.queued++
		if missed {
			l.logger().Warn("the assignment message was missed; taking the run from the heartbeat's answer", "run_id", a.RunID)
		}
	default:
		l.logger().Error("assignment dropped: too many waiting", "run_id", a.RunID)
	}
}

// stopRun stops the run under way if it is runID (a repeat does nothing).
func (l *Launcher) stopRun(runID string) {
	l.mu.Lock()
	cur := l.current
	l.mu.Unlock()
	if cur != nil && cur.runID == runID && cur.stop != nil {
		l.logger().Info("stop requested", "run_id", runID)
		cur.stop()
	}
}

// broadcast handles a message to every worker of the pool.
func (l *Launcher) broadcast(m *nats.Msg) {
	var b protocol.BroadcastMessage
	if err := json.Unmarshal(m.Data, &b); err != nil {
		l.logger().Warn("malformed broadcast", "err", err)
		return
	}
	switch b.Kind {
	case protocol.BroadcastCycle:
		l.logger().Info("the worker pool is cycled: exiting")
		l.cycle.Do(func() { close(l.cycled) })
	case protocol.BroadcastReset:
		l.logger().Error("the worker pool was reset: this launcher's token is void; exiting")
		l.resetOnce.Do(func() { close(l.reset) })
	}
}

// heartbeats tells the server the worker lives until ctx ends.
func (l *Launcher) heartbeats(ctx context.Context) {
	t := time.NewTicker(l.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		body, _ := json.Marshal(protocol.HeartbeatReport{RunID: l.hbRun, SettledRunID: l.hbSettled})
		l.mu.Unlock()
		subject := protocol.HeartbeatSubject(l.cfg.Token.PoolID, l.WorkerID())
		msg, err := l.nc.Request(subject, body, min(l.cfg.HeartbeatInterval, 5*time.Second))
		if err != nil {
			l.logger().Warn("heartbeat not answered", "err", err)
			continue
		}
		var r protocol.Reply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			l.logger().Warn("malformed heartbeat answer", "err", err)
			continue
		}
		if r.StopRunID != "" {
			l.stopRun(r.StopRunID)
		}
		if r.Cycle {
			l.logger().Info("the worker pool was cycled (heartbeat): exiting")
			l.cycle.Do(func() { close(l.cycled) })
		}
		if r.AssignedRunID != "" {
			l.enqueue(protocol.Assignment{RunID: r.AssignedRunID, PoolID: l.cfg.Token.PoolID, WorkerID: l.WorkerID()}, trace.SpanContext{}, true)
		}
		if !r.OK && r.Code == protocol.CodeGone {
			// The server gave the worker up (lost); its run was failed or
			// handed back. Stop what it still does and exit: the process
			// supervisor (or gantry dev) starts a fresh launcher.
			l.logger().Error("the server marked this worker lost; exiting", "err", r.Error)
			l.mu.Lock()
			cur := l.current
			l.mu.Unlock()
			if cur != nil && cur.fail != nil {
				cur.fail(errors.New("the server marked the worker lost"))
			}
			l.cycle.Do(func() { close(l.cycled) })
			return
		}
	}
}

// leave stops taking work, waits up to grace for the run under way, hands
// it back if it is still going and the pool was cycled (and it changed
// nothing yet) or fails it, and waits for its reports.
func (l *Launcher) leave(running *sync.WaitGroup, stopRunner chan struct{}, grace time.Duration, cycled bool, note string) {
	l.mu.Lock()
	l.leaving = true
	l.mu.Unlock()
	close(stopRunner)
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	l.mu.Lock()
	cur := l.current
	l.mu.Unlock()
	switch {
	case cur == nil || cur.fail == nil:
	case cycled && cur.handBack != nil && cur.handBack():
		l.logger().Warn("the run did not end within the grace period; handing it back", "run_id", cur.runID, "grace", grace.String())
	default:
		l.logger().Warn("the run did not end within the grace period; failing it", "run_id", cur.runID, "grace", grace.String())
		cur.fail(fmt.Errorf("%s and the run did not end within %s", note, grace))
	}
	<-done
}

func (l *Launcher) isLeaving() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leaving
}

// exit tells the server the worker goes away.
func (l *Launcher) exit(note string) {
	ctx, cancel := context.WithTimeout(context.Background(), reportTimeout)
	defer cancel()
	if err := l.request(ctx, protocol.KindExit, protocol.ExitReport{WorkerID: l.WorkerID(), Note: note}, nil); err != nil {
		l.logger().Warn("could not report the worker's exit", "err", err)
		return
	}
	l.logger().Info("worker exited", "note", note)
}
