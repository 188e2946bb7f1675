package await

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records the message and ends the
// calling goroutine, as testing.T's does, without failing the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestUntil(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trueFrom int64 // the call from which cond holds; 0: never
		within   time.Duration
		wantFail bool
	}{
		{name: "holds at once", trueFrom: 1, within: time.Second},
		{name: "holds after a few polls", trueFrom: 4, within: 5 * time.Second},
		{name: "never holds", trueFrom: 0, within: 50 * time.Millisecond, wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			r := &recorder{TB: t}
			start := time.Now()
			done := make(chan struct{})
			go func() {
				defer close(done)
				Until(r, tc.within, "the condition", func() bool {
					n := calls.Add(1)
					return tc.trueFrom > 0 && n >= tc.trueFrom
				})
			}()
			<-done
			if got := r.failed != ""; got != tc.wantFail {
				t.Fatalf("failed = %v (%q), want %v", got, r.failed, tc.wantFail)
			}
			if tc.wantFail {
				if !strings.Contains(r.failed, "the condition") {
					t.Errorf("the failure %q does not say what was awaited", r.failed)
				}
				if elapsed := time.Since(start); elapsed < tc.within {
					t.Errorf("gave up after %s, before %s", elapsed, tc.within)
				}
				return
			}
			if n := calls.Load(); n != tc.trueFrom {
				t.Errorf("cond called %d times, want %d", n, tc.trueFrom)
			}
		})
	}
}
