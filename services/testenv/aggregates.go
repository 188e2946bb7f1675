package testenv

import (
	"testing"

	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// Aggregates returns an aggregate repository on store with the default
// settings, as a server process shares one among its components.
func Aggregates(t testing.TB, store aggregate.Store) *aggregate.Repository {
	t.Helper()
	r, err := aggregate.New(store, aggregate.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
