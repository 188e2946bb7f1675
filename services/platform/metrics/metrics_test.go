package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/platform/metrics"
)

func TestInstrumentNames(t *testing.T) {
	tests := []struct {
		name, help string
		ok         bool
	}{
		{"gantry_things_total", "Things.", true},
		{"things_total", "Things.", false},
		{"gantry_things_total", " ", false},
		{"gantry_bad-name", "Bad.", false},
	}
	for _, tt := range tests {
		reg := metrics.NewRegistry()
		_, err := reg.Counter(tt.name, tt.help, "kind")
		if (err == nil) != tt.ok {
			t.Errorf("Counter(%q, %q): %v, want ok %v", tt.name, tt.help, err, tt.ok)
		}
		_, err = metrics.NewRegistry().Histogram(tt.name, tt.help, metrics.LatencyBuckets)
		if (err == nil) != tt.ok {
			t.Errorf("Histogram(%q, %q): %v, want ok %v", tt.name, tt.help, err, tt.ok)
		}
	}
}

// Two components making the same instrument share it; the handler serves
// it with the runtime's metrics.
func TestSameNameIsOneInstrument(t *testing.T) {
	reg := metrics.NewRegistry()
	a, err := reg.Counter("gantry_webhooks_total", "Webhooks received.", "provider")
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Counter("gantry_webhooks_total", "Webhooks received.", "provider")
	if err != nil {
		t.Fatal(err)
	}
	a.WithLabelValues("github").Inc()
	b.WithLabelValues("github").Add(2)
	if _, err := reg.Counter("gantry_webhooks_total", "Webhooks received.", "other"); err == nil {
		t.Fatal("the same name with other labels: want an error")
	}
	body := scrape(t, reg)
	for _, want := range []string{`gantry_webhooks_total{provider="github"} 3`, "go_goroutines ", "process_"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// A nil registry makes working instruments that are served nowhere.
func TestNilRegistry(t *testing.T) {
	var reg *metrics.Registry
	c, err := reg.Counter("gantry_things_total", "Things.")
	if err != nil {
		t.Fatal(err)
	}
	c.WithLabelValues().Inc()
	h, err := reg.Histogram("gantry_thing_seconds", "Thing time.", metrics.LatencyBuckets, "pool")
	if err != nil {
		t.Fatal(err)
	}
	h.WithLabelValues("wp_1").Observe(0.2)
	if err := reg.Register(nil); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	reg.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Fatalf("nil registry's handler: %d, want 404", rec.Code)
	}
}

func scrape(t *testing.T, reg *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	reg.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, body)
	}
	return string(body)
}
