package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/keyring"
)

// CreatePool appends the creation of worker pool poolID (named after its
// id, with a fresh PoolCertificate) to store, as actor, and returns the
// pool's secret: for tests that need a pool without the command layer.
func CreatePool(t testing.TB, store *eventstore.Store, poolID, actor string) (secret string) {
	t.Helper()
	secret, hash, err := keyring.NewPoolSecret()
	if err != nil {
		t.Fatal(err)
	}
	events, err := workerpool.Decide(workerpool.State{}, workerpool.Create{PoolID: poolID, Name: poolID,
		Certificate: PoolCertificate(t, poolID), SecretHash: hash, Actor: actor, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	all := make([]any, len(events))
	for i, e := range events {
		all[i] = e
	}
	if _, err := store.Append(context.Background(), eventstore.Stream{Type: eventstore.StreamWorkerPool, ID: poolID}, eventstore.NoStream, all...); err != nil {
		t.Fatalf("create worker pool %s: %v", poolID, err)
	}
	return secret
}
