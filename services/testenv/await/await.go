// Package await waits, in tests, for an asynchronous effect: a bounded poll
// of a condition, never a fixed sleep. It imports nothing of Gantry, so the
// internal tests of any package can use it.
package await

import (
	"testing"
	"time"
)

// Polling starts every firstPoll and slows down to every maxPoll, so that a
// quick effect is seen at once and a slow, costly condition (an API call, a
// query) is not hammered.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Until polls cond until it holds, and fails the test, naming what it waited
// for, when it still does not after within.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	poll := firstPoll
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(poll)
		poll = min(2*poll, maxPoll)
	}
}
