package apikey

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

const (
	keyID  = "ak_0192aa"
	alice  = "user:alice"
	bob    = "user:bob"
	secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var (
	t0   = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	hash = HashSecret(secret)
)

func at(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

func given(events ...Event) State {
	var s State
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

var (
	created = APIKeyCreated{KeyID: keyID, Name: "ci", Role: RoleWriter, SecretHash: hash, At: at(0), Actor: alice}
	revoked = APIKeyRevoked{At: at(1), Actor: bob}
)

func hasField(err error, field string) bool {
	var ve *domain.ValidationError
	if errors.As(err, &ve) && ve.Field == field {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasField(e, field) {
				return true
			}
		}
	}
	return false
}

func TestDecide(t *testing.T) {
	create := func(mod func(*Create)) Create {
		c := Create{KeyID: keyID, Name: "ci", Role: RoleWriter, SecretHash: hash, Actor: alice, At: at(0)}
		mod(&c)
		return c
	}
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		is    error
		field string
	}{
		{"create", nil, create(func(*Create) {}), []Event{created}, nil, ""},
		{"create an admin key", nil, create(func(c *Create) { c.Role, c.Name = RoleAdmin, "Ops.Team_1-x" }),
			[]Event{APIKeyCreated{KeyID: keyID, Name: "Ops.Team_1-x", Role: RoleAdmin, SecretHash: hash, At: at(0), Actor: alice}}, nil, ""},
		{"create twice", []Event{created}, create(func(*Create) {}), nil, domain.ErrAlreadyExists, ""},
		{"create a revoked key again", []Event{created, revoked}, create(func(*Create) {}), nil, domain.ErrAlreadyExists, ""},
		{"no id", nil, create(func(c *Create) { c.KeyID = "" }), nil, domain.ErrInvalid, "key_id"},
		{"a pool id", nil, create(func(c *Create) { c.KeyID = "wp_1" }), nil, domain.ErrInvalid, "key_id"},
		{"no name", nil, create(func(c *Create) { c.Name = "" }), nil, domain.ErrInvalid, "name"},
		{"name with a space", nil, create(func(c *Create) { c.Name = "my key" }), nil, domain.ErrInvalid, "name"},
		{"name with a colon", nil, create(func(c *Create) { c.Name = "user:x" }), nil, domain.ErrInvalid, "name"},
		{"name starting with a dash", nil, create(func(c *Create) { c.Name = "-x" }), nil, domain.ErrInvalid, "name"},
		{"name reading as an id", nil, create(func(c *Create) { c.Name = "ak_x" }), nil, domain.ErrInvalid, "name"},
		{"name too long", nil, create(func(c *Create) { c.Name = strings.Repeat("a", MaxNameLength+1) }), nil, domain.ErrInvalid, "name"},
		{"no role", nil, create(func(c *Create) { c.Role = "" }), nil, domain.ErrInvalid, "role"},
		{"unknown role", nil, create(func(c *Create) { c.Role = "root" }), nil, domain.ErrInvalid, "role"},
		{"role in capitals", nil, create(func(c *Create) { c.Role = "Admin" }), nil, domain.ErrInvalid, "role"},
		{"no secret hash", nil, create(func(c *Create) { c.SecretHash = "" }), nil, domain.ErrInvalid, "secret_hash"},
		{"the secret instead of a hash", nil, create(func(c *Create) { c.SecretHash = "hunter2" }), nil, domain.ErrInvalid, "secret_hash"},
		{"no actor", nil, create(func(c *Create) { c.Actor = "" }), nil, domain.ErrInvalid, "actor"},
		{"no time", nil, create(func(c *Create) { c.At = time.Time{} }), nil, domain.ErrInvalid, "at"},

		{"revoke", []Event{created}, Revoke{Actor: bob, At: at(1)}, []Event{revoked}, nil, ""},
		{"revoke twice", []Event{created, revoked}, Revoke{Actor: bob, At: at(2)}, nil, domain.ErrNotFound, ""},
		{"revoke a missing key", nil, Revoke{Actor: bob, At: at(1)}, nil, domain.ErrNotFound, ""},
		{"revoke without an actor", []Event{created}, Revoke{At: at(1)}, nil, domain.ErrInvalid, "actor"},

		{"pointer command", nil, &Create{KeyID: keyID, Name: "ci", Role: RoleWriter, SecretHash: hash, Actor: alice, At: at(0)}, []Event{created}, nil, ""},
		{"nil command", nil, nil, nil, domain.ErrInvalid, "command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(given(tc.given...), tc.cmd)
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
			switch {
			case tc.is == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if tc.field != "" && !hasField(err, tc.field) {
				t.Errorf("error %v does not name field %q", err, tc.field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	live := given(&created) // by pointer, as a decoder gives them
	if !live.Exists() || !live.Live() || live.Revoked() || live.ID() != keyID || live.Name() != "ci" || live.Role() != RoleWriter ||
		live.CreatedBy() != alice || !live.CreatedAt().Equal(at(0)) || !live.RevokedAt().IsZero() || live.RevokedBy() != "" {
		t.Errorf("created key: %+v", live)
	}
	gone := given(created, revoked)
	if !gone.Exists() || gone.Live() || !gone.Revoked() || gone.RevokedBy() != bob || !gone.RevokedAt().Equal(at(1)) || gone.Name() != "ci" {
		t.Errorf("revoked key: %+v", gone)
	}
	if s := given(); s.Exists() || s.Live() {
		t.Errorf("zero key: %+v", s)
	}
}

func TestSecretMatches(t *testing.T) {
	live := given(created)
	for _, tc := range []struct {
		name   string
		s      State
		secret string
		want   bool
	}{
		{"the secret", live, secret, true},
		{"another secret", live, strings.Repeat("f", SecretLength), false},
		{"empty", live, "", false},
		{"the hash itself", live, hash, false},
		{"revoked key", given(created, revoked), secret, false},
		{"missing key", given(), secret, false},
	} {
		if got := tc.s.SecretMatches(tc.secret); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRoles(t *testing.T) {
	cases := []struct {
		have, need Role
		want       bool
	}{
		{RoleReader, RoleReader, true}, {RoleReader, RoleWriter, false}, {RoleReader, RoleAdmin, false},
		{RoleWriter, RoleReader, true}, {RoleWriter, RoleWriter, true}, {RoleWriter, RoleAdmin, false},
		{RoleAdmin, RoleReader, true}, {RoleAdmin, RoleWriter, true}, {RoleAdmin, RoleAdmin, true},
		{"", RoleReader, false}, {"root", RoleReader, false}, {RoleAdmin, "", false}, {RoleAdmin, "root", false},
	}
	for _, tc := range cases {
		if got := tc.have.AtLeast(tc.need); got != tc.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tc.have, tc.need, got, tc.want)
		}
	}
	for r, want := range map[Role]bool{RoleReader: false, RoleWriter: true, RoleAdmin: true, "": false, "root": false} {
		if got := r.CanReadSecrets(); got != want {
			t.Errorf("%q.CanReadSecrets() = %v, want %v", r, got, want)
		}
	}
	for in, want := range map[string]Role{"reader": RoleReader, "Writer": RoleWriter, " ADMIN ": RoleAdmin} {
		if got, err := ParseRole(in); err != nil || got != want {
			t.Errorf("ParseRole(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "user", "root", "admins"} {
		if _, err := ParseRole(in); err == nil || !strings.Contains(err.Error(), "reader, writer or admin") {
			t.Errorf("ParseRole(%q): %v, want an error listing the roles", in, err)
		}
	}
}

func TestKeyFormat(t *testing.T) {
	const id = "ak_0192aabbccddeeff0011223344556677"
	key := FormatKey(id, secret)
	if key != id+"_"+secret {
		t.Fatalf("FormatKey = %q", key)
	}
	if gotID, gotSecret, ok := ParseKey(key); !ok || gotID != id || gotSecret != secret || !LooksLikeKey(key) {
		t.Fatalf("ParseKey(%q) = %q, %q, %v", key, gotID, gotSecret, ok)
	}
	for name, bad := range map[string]string{
		"empty":            "",
		"no secret":        id,
		"short secret":     id + "_" + secret[1:],
		"upper-case hex":   id + "_" + strings.ToUpper(secret),
		"not hex":          id + "_" + strings.Repeat("g", SecretLength),
		"wrong prefix":     "wp_0192_" + secret,
		"no id":            "_" + secret,
		"a JWT":            "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
		"space in the id":  "ak_01 92_" + secret,
		"prefix alone":     "ak__" + secret,
		"trailing newline": key + "\n",
	} {
		if _, _, ok := ParseKey(bad); ok || LooksLikeKey(bad) {
			t.Errorf("%s: %q parses as a key", name, bad)
		}
	}
}

func TestEventsConform(t *testing.T) {
	eventtest.Conformance(t, "APIKey", Events())
}

// Stored keys must still decode: the JSON field names are fixed.
func TestStoredFormIsStable(t *testing.T) {
	data, err := json.Marshal(created)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key_id":"ak_0192aa","name":"ci","role":"writer","secret_hash":"` + hash + `","at":"2026-03-04T05:06:07Z","actor":"user:alice"}`
	if string(data) != want {
		t.Errorf("APIKeyCreated JSON %s, want %s", data, want)
	}
	if hash != "a8ae6e6ee929abea3afcfc5258c8ccd6f85273e0d4626d26c7279f3250f77c8e" {
		t.Errorf("HashSecret is not the hex SHA-256 of the secret: %s", hash)
	}
}
