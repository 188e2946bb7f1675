package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// adoptOrphans sends, on their workers' behalf, the reports that earlier
// launchers of this host left unanswered when they died (their outboxes
// under root, which no live launcher holds), then reports those workers'
// exit. A run an earlier launcher was running is failed at once: its
// processes died with the launcher (process group, parent-death signal),
// and the lost-worker timeout need not be waited for.
func (l *Launcher) adoptOrphans(ctx context.Context, root string) {
	orphans, err := orphanOutboxes(root)
	if err != nil {
		l.logger().Error("could not look for the reports of earlier launchers", "err", err)
	}
	var wg sync.WaitGroup
	for _, o := range orphans {
		wg.Go(func() { l.adopt(ctx, o) })
	}
	wg.Wait()
}

// adopt sends the reports of one dead launcher's worker.
func (l *Launcher) adopt(ctx context.Context, o *outbox) {
	defer o.close(true)
	workerID := o.workerID()
	log := l.logger().With("earlier_worker_id", workerID)
	pending, err := o.pending()
	if err != nil {
		log.Error("could not read the reports of an earlier launcher", "err", err)
		return
	}
	mark, running := o.run()
	if running {
		// Sent after whatever it left: refused, harmlessly, if those ended
		// the run already.
		body, _ := json.Marshal(protocol.RunReport{WorkerID: workerID, RunID: mark.RunID,
			Note: "the worker's launcher was restarted while it ran the run"})
		r := &pendingReport{Kind: protocol.KindRunFailed, ReportID: workerID + "-" + mark.RunID + "-restarted",
			WorkerID: workerID, RunID: mark.RunID, Body: body, Deadline: mark.Deadline}
		if err := o.put(r); err != nil {
			log.Error("could not keep a report on disk", "err", err)
		}
		pending = append(pending, r)
	}
	if len(pending) == 0 && !running {
		if !o.empty() {
			log.Warn("an earlier launcher left a state terraform could not store, and no run to store it with: store it by hand", "dir", o.dir)
		}
		return
	}
	log.Info("sending the reports an earlier launcher of this host left", "reports", len(pending), "run_id", mark.RunID)
	// The worker must stay alive meanwhile: heartbeat for it.
	hbCtx, stop := context.WithCancel(ctx)
	gone := make(chan struct{})
	go l.heartbeatFor(hbCtx, workerID, mark.RunID, gone)
	for _, r := range pending {
		select {
		case <-gone:
			// Lost or exited meanwhile: the server settled its run.
			o.done(r)
			continue
		default:
		}
		err := l.sendKept(ctx, o, r, nil)
		var re *ReportError
		switch {
		case err == nil:
			log.Info("report of an earlier launcher answered", "kind", r.Kind, "run_id", r.RunID)
		case errors.As(err, &re):
			log.Info("report of an earlier launcher refused", "kind", r.Kind, "run_id", r.RunID, "code", re.Code, "err", re.Message)
		case ctx.Err() != nil:
			stop()
			return // this launcher stops too: the next one takes over
		default:
			log.Error("report of an earlier launcher given up", "kind", r.Kind, "run_id", r.RunID, "err", err)
		}
	}
	stop()
	_ = o.setRun(runMark{})
	ectx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if err := l.request(ectx, protocol.KindExit, protocol.ExitReport{WorkerID: workerID, Note: "its launcher was restarted"}, nil); err != nil {
		log.Warn("could not report the exit of an earlier launcher's worker", "err", err)
	}
}

// heartbeatFor keeps an earlier launcher's worker alive while its reports
// go, saying it runs (or reports) runID; gone is closed when the server
// answers that the worker is gone.
func (l *Launcher) heartbeatFor(ctx context.Context, workerID, runID string, gone chan struct{}) {
	t := time.NewTicker(l.cfg.HeartbeatInterval)
	defer t.Stop()
	body, _ := json.Marshal(protocol.HeartbeatReport{RunID: runID})
	subject := protocol.HeartbeatSubject(l.cfg.Token.PoolID, workerID)
	for {
		msg, err := l.nc.Request(subject, body, min(l.cfg.HeartbeatInterval, 5*time.Second))
		if err == nil {
			var r protocol.Reply
			if json.Unmarshal(msg.Data, &r) == nil && r.Code == protocol.CodeGone {
				close(gone)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
