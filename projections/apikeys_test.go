package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/domain/ids"
	"github.com/gantryhq/gantry/projections"
)

func TestAPIKeysProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := newSim("ak")
	hash := apikey.HashSecret("secret")
	keys := map[string]string{}
	steps := record(t, s, func() {
		for _, k := range []struct {
			name string
			role apikey.Role
		}{{"ops", apikey.RoleAdmin}, {"ci", apikey.RoleWriter}, {"Auditor", apikey.RoleReader}, {"old", apikey.RoleWriter}} {
			id := s.id(ids.APIKey)
			keys[k.name] = id
			u := s.begin()
			u.apikey(id, apikey.Create{KeyID: id, Name: k.name, Role: k.role, SecretHash: hash, Actor: "user:admin", At: s.now()})
			u.commit()
		}
		u := s.begin()
		u.apikey(keys["old"], apikey.Revoke{Actor: "user:ops", At: s.now()})
		u.commit()
	})
	appendSteps(t, e.store, steps)
	catchUp(t, e)

	ops, err := e.q.GetAPIKey(ctx, keys["ops"])
	if err != nil {
		t.Fatal(err)
	}
	if ops.Name != "ops" || ops.Role != apikey.RoleAdmin || ops.CreatedBy != "user:admin" || !ops.CreatedAt.Equal(simEpoch.Add(time.Second)) ||
		ops.RevokedAt != nil || ops.RevokedBy != "" || ops.Version != 1 {
		t.Errorf("ops = %+v", ops)
	}
	old, err := e.q.GetAPIKey(ctx, keys["old"])
	if err != nil {
		t.Fatal(err)
	}
	if old.RevokedAt == nil || !old.RevokedAt.Equal(simEpoch.Add(5*time.Second)) || old.RevokedBy != "user:ops" || old.Version != 2 {
		t.Errorf("revoked key = %+v", old)
	}
	if _, err := e.q.GetAPIKey(ctx, "ak_none"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}

	// Live keys only, by name in byte order, a page at a time.
	var names []string
	token := ""
	for range 3 {
		page, next, err := e.q.ListAPIKeys(ctx, token, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page {
			names = append(names, k.Name)
		}
		if token = next; token == "" {
			break
		}
	}
	if fmt.Sprint(names) != "[Auditor ci ops]" {
		t.Errorf("listed %v, want [Auditor ci ops]", names)
	}
	if _, _, err := e.q.ListAPIKeys(ctx, "garbage", 2); !errors.Is(err, projections.ErrInvalidPageToken) {
		t.Errorf("bad page token: %v", err)
	}
	for role, want := range map[apikey.Role]int{apikey.RoleAdmin: 1, apikey.RoleWriter: 1, apikey.RoleReader: 1} {
		if n, err := e.q.CountLiveAPIKeys(ctx, role); err != nil || n != want {
			t.Errorf("live %s keys: %d, %v; want %d (the revoked writer left out)", role, n, err, want)
		}
	}
}
