package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// outbox keeps one worker's reports that record a result on disk, from
// before they are sent until the server answers them, so that neither an
// outage nor a launcher restart loses the end of a run. It also marks the
// run the worker executes, so that a launcher restarted in the middle of a
// run (whose processes died with it) can report the run's end at once
// instead of leaving it to the lost-worker timeout.
//
// Layout: <root>/<worker id>/ holds "lock" (held with flock by the live
// launcher of the worker), "run" (the run under way, if any), one file per
// pending report ("<sequence>.report") and the states terraform could not
// store ("<run id>.errored.tfstate"). Launchers of one host may share the
// root: a worker's directory whose lock nobody holds belongs to a launcher
// that died, and the next launcher adopts it.
type outbox struct {
	dir  string
	lock *os.File
	next int
}

// pendingReport is a report kept in an outbox.
type pendingReport struct {
	Kind     string          `json:"kind"`
	ReportID string          `json:"report_id"`
	WorkerID string          `json:"worker_id"`
	RunID    string          `json:"run_id"`
	Body     json.RawMessage `json:"body"`
	// Deadline is when the launcher gives the report up: the run's
	// timeout has long passed, and the server settles the run without it.
	Deadline time.Time `json:"deadline"`
	// path is where the report is kept.
	path string
}

// outboxRoot is where the launchers of pool keep their outboxes under the
// work directory (the system's temporary directory when empty).
func outboxRoot(workDir, pool string) string {
	if workDir == "" {
		workDir = os.TempDir()
	}
	return filepath.Join(workDir, "gantry-reports", pool)
}

// openOutbox creates and locks the outbox of a new worker.
func openOutbox(root, workerID string) (*outbox, error) {
	dir := filepath.Join(root, workerID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("reports of worker %s: %w", workerID, err)
	}
	o, locked, err := lockOutbox(dir)
	if err != nil {
		return nil, err
	}
	if !locked {
		return nil, fmt.Errorf("reports of worker %s: %s is held by another launcher", workerID, dir)
	}
	return o, nil
}

// lockOutbox takes the lock of the outbox in dir; locked is false when a
// live launcher holds it.
func lockOutbox(dir string) (o *outbox, locked bool, err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", dir, err)
	}
	o = &outbox{dir: dir, lock: f}
	// A file torn by a crash while being written was never sent.
	if torn, err := filepath.Glob(filepath.Join(dir, "*.tmp")); err == nil {
		for _, t := range torn {
			_ = os.Remove(t)
		}
	}
	pending, err := o.pending()
	if err != nil {
		o.close(false)
		return nil, false, err
	}
	for _, p := range pending {
		n, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(p.path), ".report"))
		o.next = max(o.next, n)
	}
	return o, true, nil
}

// orphanOutboxes locks and returns the outboxes under root that no live
// launcher holds: those of workers whose launcher died.
func orphanOutboxes(root string) ([]*outbox, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the reports of earlier launchers: %w", err)
	}
	var out []*outbox
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		o, locked, err := lockOutbox(filepath.Join(root, e.Name()))
		if err != nil {
			return out, err
		}
		if locked {
			out = append(out, o)
		}
	}
	return out, nil
}

// workerID is the worker whose outbox this is.
func (o *outbox) workerID() string { return filepath.Base(o.dir) }

// put keeps a report, durably, before it is sent.
func (o *outbox) put(r *pendingReport) error {
	o.next++
	r.path = filepath.Join(o.dir, fmt.Sprintf("%09d.report", o.next))
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeReplacing(r.path, data, true)
}

// done drops a report the server answered (or that was given up).
func (o *outbox) done(r *pendingReport) {
	if r.path != "" {
		_ = os.Remove(r.path)
	}
}

// pending returns the reports kept, oldest first.
func (o *outbox) pending() ([]*pendingReport, error) {
	names, err := filepath.Glob(filepath.Join(o.dir, "*.report"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []*pendingReport
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read a kept report: %w", err)
		}
		var r pendingReport
		if err := json.Unmarshal(data, &r); err != nil {
			// A report torn by a crash while being written was never sent.
			_ = os.Remove(name)
			continue
		}
		r.path = name
		out = append(out, &r)
	}
	return out, nil
}

// runMark is what the outbox remembers of the run under way.
type runMark struct {
	RunID    string    `json:"run_id"`
	Deadline time.Time `json:"deadline"`
}

// setRun marks the run under way ("" clears the mark). The mark is not
// synced to disk: it only spares the lost-worker timeout after a launcher
// restart, which a process crash leaves it for (the page cache survives)
// and a host crash does not need (the worker stops heartbeating, and a
// mark lost or left behind is harmless: a run reported failed twice is
// refused). Two syncs per run less, each a journal commit.
func (o *outbox) setRun(m runMark) error {
	path := filepath.Join(o.dir, "run")
	if m.RunID == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeReplacing(path, data, false)
}

// run returns the marked run, if any.
func (o *outbox) run() (runMark, bool) {
	data, err := os.ReadFile(filepath.Join(o.dir, "run"))
	if err != nil {
		return runMark{}, false
	}
	var m runMark
	if json.Unmarshal(data, &m) != nil || m.RunID == "" {
		return runMark{}, false
	}
	return m, true
}

// keepState keeps a state terraform could not store, until it is stored,
// and returns where.
func (o *outbox) keepState(runID string, data []byte) (string, error) {
	path := filepath.Join(o.dir, runID+".errored.tfstate")
	return path, writeReplacing(path, data, true)
}

// dropState drops a kept state once it is stored.
func (o *outbox) dropState(path string) { _ = os.Remove(path) }

// empty reports whether nothing but the lock is left: no report, no run,
// no state waiting to be stored.
func (o *outbox) empty() bool {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name() != "lock" {
			return false
		}
	}
	return true
}

// close releases the outbox; remove deletes it when it holds nothing more.
func (o *outbox) close(remove bool) {
	if remove && o.empty() {
		_ = os.RemoveAll(o.dir)
	}
	_ = o.lock.Close()
}

// writeReplacing writes data to path through a temporary file, renamed, so
// that a crash leaves the old content or the new, never half; with sync
// the file and the rename are on disk when it returns.
func writeReplacing(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
