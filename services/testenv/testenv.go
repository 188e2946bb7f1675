// Package testenv is the test harness of every package that needs real infrastructure: a fresh
// PostgreSQL database per test on one throwaway cluster per test binary, embedded NATS servers
// with JetStream, an S3-compatible server (versitygw, see S3), a real Terraform provider served from a
// filesystem mirror (TestProvider), and the few fixtures many
// packages' tests share (a migrated event store and its aggregate repository, a pool
// certificate, a secrets keeper, an object store). It imports only the event store,
// services/platform/pgserver, services/platform/bus, services/platform/keyring and
// services/platform/objstore, so that the tests of any package above them can use it.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Run runs the tests and then releases what the package's tests shared: it stops the PostgreSQL
// cluster if one was started and removes its directory, and removes the test provider's mirror. It returns the exit code, so that a
// TestMain can add its own checks after the shared resources are gone (MainNoLeaks adds the check
// for leaked goroutines).
func Run(m *testing.M) int {
	code := m.Run()
	for _, release := range []func() error{releasePostgres, releaseProviderMirror} {
		if err := release(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Main is the whole TestMain of a package that needs nothing more: Run, then exit with its code.
// Without it the cluster still dies with the test binary, but its directory is left behind.
func Main(m *testing.M) {
	os.Exit(Run(m))
}
