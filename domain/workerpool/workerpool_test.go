package workerpool

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

const (
	poolID = "wp_01"
	alice  = "user:alice"
	hash1  = "sha256:1111"
	hash2  = "sha256:2222"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func at(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

func given(events ...Event) State {
	var s State
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func cert(fingerprintDigit string, alg KeyAlgorithm, bits int) Certificate {
	return Certificate{PEM: pem, Serial: "0a1b", Fingerprint: strings.Repeat(fingerprintDigit, 64), KeyAlgorithm: alg, KeyBits: bits}
}

var (
	cert1   = cert("a", RSA, 4096)
	cert2   = cert("b", ECDSA, 256)
	created = WorkerPoolCreated{PoolID: poolID, Name: "EU private", Labels: []string{"eu"}, Certificate: cert1,
		SecretHash: hash1, Generation: 1, At: at(0), Actor: alice}
	publicCreated = WorkerPoolCreated{PoolID: "wp_public", Name: "public", Public: true, Certificate: cert1,
		SecretHash: hash1, Generation: 1, At: at(0), Actor: "system:setup"}
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
		c := Create{PoolID: poolID, Name: "EU private", Labels: []string{"eu", "eu"}, Certificate: cert1, SecretHash: hash1, Actor: alice, At: at(0)}
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
		{"create with drift limit and ECDSA key", nil, create(func(c *Create) { c.DriftRunLimit, c.Certificate = 3, cert2 }),
			[]Event{WorkerPoolCreated{PoolID: poolID, Name: "EU private", Labels: []string{"eu"}, DriftRunLimit: 3, Certificate: cert2,
				SecretHash: hash1, Generation: 1, At: at(0), Actor: alice}}, nil, ""},
		{"create normalizes the fingerprint", nil, create(func(c *Create) { c.Certificate.Fingerprint = strings.Repeat("A", 64) }),
			[]Event{created}, nil, ""},
		{"create the public pool", nil, create(func(c *Create) {
			c.PoolID, c.Name, c.Public, c.Labels, c.Actor = "wp_public", "public", true, nil, "system:setup"
		}), []Event{publicCreated}, nil, ""},
		{"private pool with the public id", nil, create(func(c *Create) { c.PoolID = "wp_public" }), nil, domain.ErrInvalid, "public"},
		{"public flag on a private id", nil, create(func(c *Create) { c.Public = true }), nil, domain.ErrInvalid, "public"},
		{"create with a worker id", nil, create(func(c *Create) { c.PoolID = "wkr_1" }), nil, domain.ErrInvalid, "pool_id"},
		{"create without name", nil, create(func(c *Create) { c.Name = " " }), nil, domain.ErrInvalid, "name"},
		{"create with negative drift limit", nil, create(func(c *Create) { c.DriftRunLimit = -1 }), nil, domain.ErrInvalid, "drift_run_limit"},
		{"create with a short RSA key", nil, create(func(c *Create) { c.Certificate = cert("a", RSA, 1024) }), nil, domain.ErrInvalid, "certificate.key_bits"},
		{"create with a P-224 key", nil, create(func(c *Create) { c.Certificate = cert("a", ECDSA, 224) }), nil, domain.ErrInvalid, "certificate.key_bits"},
		{"create with an Ed25519 key", nil, create(func(c *Create) { c.Certificate = cert("a", "Ed25519", 256) }), nil, domain.ErrInvalid, "certificate.key_algorithm"},
		{"create with a DSA key", nil, create(func(c *Create) { c.Certificate = cert("a", "DSA", 2048) }), nil, domain.ErrInvalid, "certificate.key_algorithm"},
		{"create with a CSR instead of a certificate", nil, create(func(c *Create) {
			c.Certificate.PEM = "-----BEGIN CERTIFICATE REQUEST-----\nx\n-----END CERTIFICATE REQUEST-----"
		}), nil, domain.ErrInvalid, "certificate.pem"},
		{"create without serial", nil, create(func(c *Create) { c.Certificate.Serial = "" }), nil, domain.ErrInvalid, "certificate.serial"},
		{"create with a SHA-1 fingerprint", nil, create(func(c *Create) { c.Certificate.Fingerprint = strings.Repeat("a", 40) }), nil, domain.ErrInvalid, "certificate.fingerprint"},
		{"create without secret hash", nil, create(func(c *Create) { c.SecretHash = "" }), nil, domain.ErrInvalid, "secret_hash"},
		{"create without time", nil, create(func(c *Create) { c.At = time.Time{} }), nil, domain.ErrInvalid, "at"},
		{"create an existing pool", []Event{created}, create(func(*Create) {}), nil, domain.ErrAlreadyExists, ""},

		{"update", []Event{created}, Update{Name: "EU", Description: "eu-west-1", Labels: []string{"b", "a"}, DriftRunLimit: 2, Actor: alice, At: at(1)},
			[]Event{WorkerPoolUpdated{Name: "EU", Description: "eu-west-1", Labels: []string{"a", "b"}, DriftRunLimit: 2, At: at(1), Actor: alice}}, nil, ""},
		{"update to the same values", []Event{created}, Update{Name: "EU private", Labels: []string{"eu"}, Actor: alice, At: at(1)}, nil, nil, ""},
		{"update only the labels", []Event{created}, Update{Name: "EU private", Labels: []string{"eu", "gpu"}, Actor: alice, At: at(1)},
			[]Event{WorkerPoolUpdated{Name: "EU private", Labels: []string{"eu", "gpu"}, At: at(1), Actor: alice}}, nil, ""},
		{"update with a bad label", []Event{created}, Update{Name: "EU", Labels: []string{"a\x00"}, Actor: alice, At: at(1)}, nil, domain.ErrInvalid, "labels"},
		{"update a missing pool", nil, Update{Name: "EU", Actor: alice, At: at(1)}, nil, domain.ErrNotFound, ""},

		{"reset", []Event{created}, Reset{Certificate: cert2, SecretHash: hash2, Actor: alice, At: at(2)},
			[]Event{WorkerPoolReset{Certificate: cert2, SecretHash: hash2, Generation: 2, At: at(2), Actor: alice}}, nil, ""},
		{"second reset", []Event{created, WorkerPoolReset{Certificate: cert2, SecretHash: hash2, Generation: 2, At: at(2), Actor: alice}},
			Reset{Certificate: cert1, SecretHash: hash1, Actor: alice, At: at(3)},
			[]Event{WorkerPoolReset{Certificate: cert1, SecretHash: hash1, Generation: 3, At: at(3), Actor: alice}}, nil, ""},
		{"reset keeping the secret", []Event{created}, Reset{Certificate: cert2, SecretHash: hash1, Actor: alice, At: at(2)}, nil, domain.ErrInvalid, "secret_hash"},
		{"reset keeping the certificate", []Event{created}, Reset{Certificate: cert1, SecretHash: hash2, Actor: alice, At: at(2)}, nil, domain.ErrInvalid, "certificate.fingerprint"},
		{"reset with a weak key", []Event{created}, Reset{Certificate: cert("c", RSA, 1024), SecretHash: hash2, Actor: alice, At: at(2)}, nil, domain.ErrInvalid, "certificate.key_bits"},
		{"reset a deleted pool", []Event{created, WorkerPoolDeleted{At: at(1), Actor: alice}}, Reset{Certificate: cert2, SecretHash: hash2, Actor: alice, At: at(2)}, nil, domain.ErrNotFound, ""},

		{"cycle", []Event{created}, Cycle{Actor: alice, At: at(4)}, []Event{WorkerPoolCycleRequested{At: at(4), Actor: alice}}, nil, ""},
		{"cycle the public pool", []Event{publicCreated}, Cycle{Actor: alice, At: at(4)}, []Event{WorkerPoolCycleRequested{At: at(4), Actor: alice}}, nil, ""},
		{"cycle without actor", []Event{created}, Cycle{At: at(4)}, nil, domain.ErrInvalid, "actor"},

		{"delete", []Event{created}, Delete{Actor: alice, At: at(5)}, []Event{WorkerPoolDeleted{At: at(5), Actor: alice}}, nil, ""},
		{"delete the public pool", []Event{publicCreated}, Delete{Actor: alice, At: at(5)}, nil, ErrPublicPool, ""},
		{"delete twice", []Event{created, WorkerPoolDeleted{At: at(5), Actor: alice}}, Delete{Actor: alice, At: at(6)}, nil, domain.ErrNotFound, ""},
		{"delete a pool stacks use", []Event{created}, Delete{UsedBy: []string{"network"}, Actor: alice, At: at(5)}, nil, ErrInUse, ""},
		{"delete the public pool stacks use", []Event{publicCreated}, Delete{UsedBy: []string{"network"}, Actor: alice, At: at(5)}, nil, ErrPublicPool, ""},

		{"pointer command", []Event{created}, &Cycle{Actor: alice, At: at(4)}, []Event{WorkerPoolCycleRequested{At: at(4), Actor: alice}}, nil, ""},
		{"nil command", []Event{created}, nil, nil, domain.ErrInvalid, "command"},
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
			case tc.field != "" && !hasField(err, tc.field):
				t.Errorf("error %v does not name field %q", err, tc.field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestInUseNamesTheStacks(t *testing.T) {
	_, err := Decide(given(created), Delete{UsedBy: []string{"network", "dns"}, Actor: alice, At: at(5)})
	if want := "worker pool wp_01 is used by stacks network, dns: move them to another pool first"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestEventsConform(t *testing.T) {
	eventtest.Conformance(t, "WorkerPool", Events())
}

func TestApply(t *testing.T) {
	s := given(created)
	if !s.Exists() || s.ID() != poolID || s.Name() != "EU private" || !reflect.DeepEqual(s.Labels(), []string{"eu"}) ||
		s.Generation() != 1 || s.Certificate() != cert1 || s.SecretHash() != hash1 || s.Public() || !s.CreatedAt().Equal(at(0)) {
		t.Fatalf("created pool: %+v", s)
	}
	s.Apply(WorkerPoolUpdated{Name: "EU", Description: "d", Labels: []string{"x"}, DriftRunLimit: 2, At: at(1), Actor: alice})
	if s.Name() != "EU" || s.Description() != "d" || !reflect.DeepEqual(s.Labels(), []string{"x"}) || s.DriftRunLimit() != 2 {
		t.Errorf("updated pool: %+v", s)
	}
	s.Labels()[0] = "changed"
	if s.Labels()[0] != "x" {
		t.Error("Labels() exposes the state's slice")
	}
	s.Apply(&WorkerPoolReset{Certificate: cert2, SecretHash: hash2, Generation: 2, At: at(2), Actor: alice})
	if s.Generation() != 2 || s.Certificate() != cert2 {
		t.Errorf("reset (applied by pointer): generation %d, certificate %+v", s.Generation(), s.Certificate())
	}
	if !s.CycleRequestedAt().IsZero() {
		t.Error("cycle requested before any cycle")
	}
	s.Apply(WorkerPoolCycleRequested{At: at(3), Actor: alice})
	if !s.CycleRequestedAt().Equal(at(3)) {
		t.Errorf("cycle requested at %v", s.CycleRequestedAt())
	}
	s.Apply(WorkerPoolDeleted{At: at(4), Actor: alice})
	if s.Exists() || !s.Deleted() {
		t.Error("deleted pool still exists")
	}
}

func TestSecretMatches(t *testing.T) {
	s := given(created)
	if !s.SecretMatches(hash1) || s.SecretMatches(hash2) || s.SecretMatches("") || s.SecretMatches(hash1+"x") {
		t.Error("secret comparison against the current hash is wrong")
	}
	s.Apply(WorkerPoolReset{Certificate: cert2, SecretHash: hash2, Generation: 2, At: at(1), Actor: alice})
	if s.SecretMatches(hash1) || !s.SecretMatches(hash2) {
		t.Error("the old secret still matches after a reset")
	}
	s.Apply(WorkerPoolDeleted{At: at(2), Actor: alice})
	if s.SecretMatches(hash2) {
		t.Error("a deleted pool accepts its secret")
	}
	if (State{}).SecretMatches("") {
		t.Error("a missing pool matches the empty secret")
	}
}
