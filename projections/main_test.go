package projections_test

import (
	"testing"

	"github.com/gantryhq/gantry/services/testenv"
)

// TestMain stops the shared PostgreSQL cluster after the tests and fails
// the run if a projector, waiter or NATS client goroutine outlived them.
func TestMain(m *testing.M) {
	testenv.MainNoLeaks(m)
}
