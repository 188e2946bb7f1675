package ui

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

const poolsPageSize = 25

type poolsData struct {
	Pools     []*gantryv1.WorkerPool
	Next      string
	FirstPage bool
}

func (u *UI) poolsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	token := r.URL.Query().Get("page")
	res, err := u.c.pools.ListWorkerPools(ctx, connect.NewRequest(&gantryv1.ListWorkerPoolsRequest{PageSize: poolsPageSize, PageToken: token}))
	if err != nil {
		u.fail(w, r, "list the worker pools", err)
		return
	}
	u.render(w, r, http.StatusOK, "pools", page{Title: "Worker pools", Data: poolsData{Pools: res.Msg.GetPools(), Next: res.Msg.GetNextPageToken(), FirstPage: token == ""}})
}

type workerRow struct {
	Worker   *gantryv1.Worker
	Status   string
	Metadata string
}

type poolData struct {
	Pool          *gantryv1.WorkerPool
	UsedBy        []*gantryv1.StackRef
	Workers       []workerRow
	ServerVersion string
	Queue         []*gantryv1.QueuedRun
}

func workerStatusName(s gantryv1.WorkerStatus) string {
	return strings.TrimPrefix(s.String(), "WORKER_STATUS_")
}

func (u *UI) poolPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	pool := r.PathValue("pool")
	p, err := u.c.pools.GetWorkerPool(ctx, connect.NewRequest(&gantryv1.GetWorkerPoolRequest{Pool: pool}))
	if err != nil {
		u.fail(w, r, "read the worker pool", err)
		return
	}
	d := poolData{Pool: p.Msg.GetPool(), UsedBy: p.Msg.GetUsedBy()}
	ws, err := u.c.pools.ListWorkers(ctx, connect.NewRequest(&gantryv1.ListWorkersRequest{Pool: d.Pool.GetId()}))
	if err != nil {
		u.fail(w, r, "list the pool's workers", err)
		return
	}
	d.ServerVersion = ws.Msg.GetServerVersion()
	for _, wk := range ws.Msg.GetWorkers() {
		keys := make([]string, 0, len(wk.GetMetadata()))
		for k := range wk.GetMetadata() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var md []string
		for _, k := range keys {
			md = append(md, k+"="+wk.GetMetadata()[k])
		}
		d.Workers = append(d.Workers, workerRow{Worker: wk, Status: workerStatusName(wk.GetStatus()), Metadata: strings.Join(md, ", ")})
	}
	q, err := u.c.pools.GetPoolQueue(ctx, connect.NewRequest(&gantryv1.GetPoolQueueRequest{Pool: d.Pool.GetId()}))
	if err != nil {
		u.fail(w, r, "read the pool's queue", err)
		return
	}
	d.Queue = q.Msg.GetRuns()
	u.render(w, r, http.StatusOK, "pool", page{Title: "Worker pool " + d.Pool.GetName(), Notice: notice(r.URL.Query().Get("done")), Data: d})
}

func (u *UI) cyclePool(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	if _, err := u.c.pools.CyclePool(ctx, connect.NewRequest(&gantryv1.CyclePoolRequest{Pool: r.PathValue("pool")})); err != nil {
		u.fail(w, r, "cycle the pool", err)
		return
	}
	http.Redirect(w, r, "/pools/"+url.PathEscape(r.PathValue("pool"))+"?done=cycle", http.StatusSeeOther)
}

func (u *UI) workerAction(w http.ResponseWriter, r *http.Request) {
	pool, worker := r.PathValue("pool"), r.PathValue("worker")
	u.act(w, r, "worker", "/pools/"+url.PathEscape(pool),
		action{"drain", "drain", rpc(u.c.pools.DrainWorker, &gantryv1.DrainWorkerRequest{Pool: pool, Worker: worker})},
		action{"undrain", "undrain", rpc(u.c.pools.UndrainWorker, &gantryv1.UndrainWorkerRequest{Pool: pool, Worker: worker})})
}
