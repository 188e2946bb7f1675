package poolauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/eventstore"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/server/poolauth"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestVerifyPoolSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := poolauth.New(testenv.Aggregates(t, e.store))
	ctx := context.Background()

	live := e.createPool(t, "wp_live")
	oldSecret := e.createPool(t, "wp_reset")
	newSecret := e.resetPool(t, "wp_reset")
	gone := e.createPool(t, "wp_gone")
	e.decide(t, "wp_gone", workerpool.Delete{Actor: actor, At: time.Now()})
	// A stream whose id looks like a pool's but holds another aggregate.
	if _, err := e.store.Append(ctx, eventstore.Stream{Type: eventstore.StreamStack, ID: "wp_stack"}, eventstore.NoStream,
		stack.StackCreated{StackID: "wp_stack", At: time.Now(), Actor: actor}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, pool, secret string
		generation         int
		err                error
	}{
		{"current secret", "wp_live", live, 1, nil},
		{"wrong secret", "wp_live", live + "x", 0, poolauth.ErrWrongSecret},
		{"empty secret", "wp_live", "", 0, poolauth.ErrWrongSecret},
		{"another pool's secret", "wp_live", newSecret, 0, poolauth.ErrWrongSecret},
		{"secret after a reset", "wp_reset", newSecret, 2, nil},
		{"secret replaced by a reset", "wp_reset", oldSecret, 0, poolauth.ErrWrongSecret},
		{"deleted pool", "wp_gone", gone, 0, poolauth.ErrDeletedPool},
		{"unknown pool", "wp_nobody", live, 0, poolauth.ErrUnknownPool},
		{"stream of another aggregate", "wp_stack", live, 0, poolauth.ErrUnknownPool},
		{"not a pool id", "stk_live", live, 0, poolauth.ErrUnknownPool},
		{"wildcard", "wp_*", live, 0, poolauth.ErrUnknownPool},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			generation, err := v.VerifyPoolSecret(ctx, tt.pool, tt.secret)
			if tt.err == nil {
				if err != nil || generation != tt.generation {
					t.Fatalf("VerifyPoolSecret = %d, %v; want generation %d", generation, err, tt.generation)
				}
				return
			}
			if !errors.Is(err, tt.err) || !errors.Is(err, bus.ErrRefused) {
				t.Fatalf("VerifyPoolSecret = %d, %v; want %v, a bus.ErrRefused", generation, err, tt.err)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}

func TestVerifyPoolSecretWithoutDatabaseIsNotARefusal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := eventstore.DomainRegistry()
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(db, reg)
	defer store.Close()
	db.Close()
	_, err = poolauth.New(testenv.Aggregates(t, store)).VerifyPoolSecret(ctx, "wp_any", "secret")
	if err == nil || errors.Is(err, bus.ErrRefused) {
		t.Fatalf("VerifyPoolSecret on a closed database = %v, want an error that is not a refusal", err)
	}
}
