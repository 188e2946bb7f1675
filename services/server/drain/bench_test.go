package drain_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/services/testenv/await"
)

// percentiles reports p50 and p99 of ds in milliseconds.
func percentiles(b *testing.B, name string, ds []time.Duration) {
	b.Helper()
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), name+"-p50-ms")
	b.ReportMetric(at(0.99), name+"-p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, name+"-max-ms")
}

// BenchmarkWebhookAccept measures the webhook endpoint's answer to a signed
// push: the signature check, the integration's lookup and the delivery's
// durable append (the drain runs too). Run with -benchtime=300x.
func BenchmarkWebhookAccept(b *testing.B) {
	e := newEnvB(b)
	e.startDrain(b, "drain-1", nil, nil)
	gh := e.integration(b, domainvcs.GitHub, "gh")
	e.stack(b, "app", repo, "main", "", gh)
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		code, a := e.post(b, domainvcs.GitHub, "gh", "push", fmt.Sprint("bench-", i), push("refs/heads/main", sha), secret)
		ds = append(ds, time.Since(start))
		if code != http.StatusAccepted {
			b.Fatalf("%d %v", code, a)
		}
	}
	b.StopTimer()
	percentiles(b, "accept", ds)
}

// BenchmarkPushToQueued measures, with an idle drain, the time from
// sending a signed push to its run's RunQueued being committed (the
// event's recorded time): accept, relay, the drain's consumer, the
// delivery's and the run's append. Pushes go one at a time. Run with
// -benchtime=200x.
func BenchmarkPushToQueued(b *testing.B) {
	e := newEnvB(b)
	e.startDrain(b, "drain-1", nil, nil)
	gh := e.integration(b, domainvcs.GitHub, "gh")
	e.stack(b, "app", repo, "main", "", gh)
	ds := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		code, a := e.post(b, domainvcs.GitHub, "gh", "push", fmt.Sprint("bench-", i), push("refs/heads/main", sha), secret)
		if code != http.StatusAccepted {
			b.Fatalf("%d %v", code, a)
		}
		id := a["delivery_id"].(string)
		var queued time.Time
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := e.pool.QueryRow(ctx, `SELECT recorded_at FROM events WHERE event_type = 'RunQueued' AND metadata->>'correlation_id' = $1`, id).Scan(&queued)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("delivery %s queued no run: %v", id, err)
			}
			time.Sleep(time.Millisecond)
		}
		ds = append(ds, queued.Sub(start))
	}
	b.StopTimer()
	percentiles(b, "queued", ds)
}

// BenchmarkThousandDeliveriesTwoDrains sends 1,000 pushes as fast as the
// endpoint takes them to two drains at once, and checks that each was acted
// on once: 1,000 handled deliveries and 1,000 runs. Run with -benchtime=1x.
func BenchmarkThousandDeliveriesTwoDrains(b *testing.B) {
	const n = 1000
	for range b.N {
		b.StopTimer()
		e := newEnvB(b)
		e.startDrain(b, "drain-1", nil, nil)
		e.startDrain(b, "drain-2", nil, nil)
		gh := e.integration(b, domainvcs.GitHub, "gh")
		e.stack(b, "app", repo, "main", "", gh)
		b.StartTimer()
		start := time.Now()
		for i := range n {
			if code, a := e.post(b, domainvcs.GitHub, "gh", "push", fmt.Sprint("k-", i), push("refs/heads/main", sha), secret); code != http.StatusAccepted {
				b.Fatalf("%d %v", code, a)
			}
		}
		accepted := time.Since(start)
		await.Until(b, 2*time.Minute, "every delivery handled", func() bool { return e.count(b, "WebhookDeliveryHandled") >= n })
		all := time.Since(start)
		b.StopTimer()
		if h, r := e.count(b, "WebhookDeliveryHandled"), e.count(b, "RunQueued"); h != n || r != n {
			b.Fatalf("%d deliveries handled, %d runs queued, want %d of each", h, r, n)
		}
		b.ReportMetric(accepted.Seconds(), "accept-all-s")
		b.ReportMetric(all.Seconds(), "handled-all-s")
		b.ReportMetric(float64(n)/all.Seconds(), "deliveries/s")
	}
}
