package statebackend_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/run"
	"github.com/gantryhq/gantry/services/server/statebackend"
	"github.com/gantryhq/gantry/services/testenv"
)

// BenchmarkStateBackend measures GET and POST of 10 KiB and 1 MiB states
// through the full handler over HTTP on 127.0.0.1 (basic auth, credential
// and run lookups, state aggregate, event append, blob write or verified
// read) with 1 and 8 concurrent clients, each client on its own stack, next
// to a plain write and read of the same bytes to and from the same file://
// bucket. PostgreSQL is a private durable cluster (fsync on). Run with a
// fixed count so that the percentiles rest on enough requests:
//
//	go test ./services/server/statebackend -run '^$' -bench . -benchtime 400x
func BenchmarkStateBackend(b *testing.B) {
	const clientsMax = 8
	ctx := context.Background()
	srv := testenv.DurablePostgres(b)
	e := newEnvOn(b, srv.URL("bench"), statebackend.Config{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clientsMax * 2}}
	b.Cleanup(client.CloseIdleConnections)

	type target struct {
		url    string
		creds  statebackend.Credentials
		serial atomic.Int64
	}
	targets := make([]*target, clientsMax)
	for i := range targets {
		stk := e.createStack(true)
		runID := e.newRun(stk, run.Tracked, run.Applying)
		targets[i] = &target{url: e.stateURL(stk), creds: e.mint(stk, runID, run.PhaseApplying)}
	}

	send := func(method string, t *target, body []byte) error {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, t.url, rd)
		if err != nil {
			return err
		}
		req.SetBasicAuth(t.creds.Username, t.creds.Password)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", method, resp.StatusCode)
		}
		return nil
	}

	for _, size := range []int{10 << 10, 1 << 20} {
		head, tail := benchState(size)
		body := func(serial int64) []byte {
			return slices.Concat(head, strconv.AppendInt(nil, serial, 10), tail)
		}
		// Every stack starts with a state of this size for the GETs.
		for _, t := range targets {
			if err := send(http.MethodPost, t, body(t.serial.Add(1))); err != nil {
				b.Fatal(err)
			}
		}
		label := map[int]string{10 << 10: "10KiB", 1 << 20: "1MiB"}[size]
		for _, clients := range []int{1, clientsMax} {
			name := func(op string) string { return fmt.Sprintf("%s/%s/clients=%d", op, label, clients) }
			b.Run(name("POST"), func(b *testing.B) {
				measure(b, clients, size, func(client int) error {
					t := targets[client]
					return send(http.MethodPost, t, body(t.serial.Add(1)))
				})
			})
			b.Run(name("GET"), func(b *testing.B) {
				measure(b, clients, size, func(client int) error { return send(http.MethodGet, targets[client], nil) })
			})
			var n atomic.Int64
			b.Run(name("baseline-bucket-write"), func(b *testing.B) {
				measure(b, clients, size, func(client int) error {
					return e.bucket.WriteAll(ctx, fmt.Sprintf("baseline/%d/%d", client, n.Add(1)), body(1), nil)
				})
			})
			baseKey := fmt.Sprintf("baseline/read-%d", size)
			if err := e.bucket.WriteAll(ctx, baseKey, body(1), nil); err != nil {
				b.Fatal(err)
			}
			b.Run(name("baseline-bucket-read"), func(b *testing.B) {
				measure(b, clients, size, func(int) error {
					_, err := e.bucket.ReadAll(ctx, baseKey)
					return err
				})
			})
		}
	}
}

// measure runs b.N calls of op spread over clients goroutines and reports
// the latency percentiles and the throughput.
func measure(b *testing.B, clients, size int, op func(client int) error) {
	b.SetBytes(int64(size))
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := op(c); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// benchState returns a Terraform state of about size bytes, split where the
// serial goes.
func benchState(size int) (head, tail []byte) {
	head = []byte(`{"version":4,"terraform_version":"1.11.4","serial":`)
	var rest bytes.Buffer
	rest.WriteString(`,"lineage":"b3c4b3c4-0000-4000-8000-000000000000","outputs":{},"resources":[`)
	for i := 0; rest.Len() < size-200; i++ {
		if i > 0 {
			rest.WriteByte(',')
		}
		fmt.Fprintf(&rest, `{"mode":"managed","type":"terraform_data","name":"r%d","provider":"provider[\"terraform.io/builtin/terraform\"]",`+
			`"instances":[{"schema_version":0,"attributes":{"id":"%08d-0000-4000-8000-000000000000","input":{"value":"value %d","type":"string"},`+
			`"output":{"value":"value %d","type":"string"},"triggers_replace":null},"sensitive_attributes":[]}]}`, i, i, i, i)
	}
	rest.WriteString(`],"check_results":null}`)
	return head, rest.Bytes()
}
