package testenv

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakPatience is how long goroutines of stopped servers get to exit: an
// embedded NATS server's JetStream file stores finish flushing after
// Shutdown returns, which on a loaded two-core machine can take seconds.
const leakPatience = 10 * time.Second

// MainNoLeaks is the TestMain of a package whose tests must leave no
// goroutine behind: Run, then each of checks (what else the tests must not
// leave, such as containers), then goleak.Find (retried for up to 10 s
// while goroutines are still exiting), then exit.
func MainNoLeaks(m *testing.M, checks ...func() error) {
	code := Run(m)
	for _, check := range checks {
		if err := check(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			code = 1
		}
	}
	if code == 0 {
		deadline := time.Now().Add(leakPatience)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutines left after the tests: %v\n", err)
				code = 1
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	os.Exit(code)
}
