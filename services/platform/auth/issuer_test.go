package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/auth"
)

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, clk, keys := newIssuer(t)

	user, err := iss.Issue(ctx, "alice", auth.RoleUser, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := iss.Verify(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || p.Role != auth.RoleUser || !strings.HasPrefix(p.KeyID, "tok_") || p.IsAdmin() || p.Actor() != "user:alice" {
		t.Errorf("principal %+v", p)
	}
	c := decodeClaims(t, user)
	if c["iss"] != "gantry" || c["jti"] != p.KeyID || c["iat"] != float64(t0.Unix()) || c["exp"] != float64(t0.Add(time.Hour).Unix()) {
		t.Errorf("claims %v", c)
	}

	admin, err := iss.Issue(ctx, "ci-key", auth.RoleAdmin, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeClaims(t, admin)["exp"]; ok {
		t.Error("a token without ttl has exp")
	}
	pa, err := iss.Verify(ctx, admin)
	if err != nil || !pa.IsAdmin() || pa.Subject != "ci-key" || pa.KeyID == p.KeyID {
		t.Fatalf("admin principal %+v, %v", pa, err)
	}

	// Another replica (or a restart) on the same key store accepts both.
	other, err := auth.NewIssuer(ctx, keys, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if other.KeyID() != iss.KeyID() {
		t.Fatal("a second issuer on the same key store has another key")
	}
	for _, tok := range []string{user, admin} {
		if _, err := other.Verify(ctx, tok); err != nil {
			t.Errorf("second issuer: %v", err)
		}
	}

	// Years later the key-less admin token still works; the user's expired.
	clk.Set(t0.AddDate(5, 0, 0))
	if _, err := iss.Verify(ctx, admin); err != nil {
		t.Errorf("token without expiry: %v", err)
	}
	if _, err := iss.Verify(ctx, user); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("expired token: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, clk, keys := newIssuer(t)
	key := signingKey(t, keys)
	good, err := iss.Issue(ctx, "alice", auth.RoleUser, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	// A second server with its own database, hence its own key.
	stranger, _, strangerKeys := newIssuer(t)
	strangerToken, err := stranger.Issue(ctx, "alice", auth.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	strangerKey := signingKey(t, strangerKeys)

	header := func(mod func(map[string]any)) map[string]any {
		h := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": iss.KeyID()}
		if mod != nil {
			mod(h)
		}
		return h
	}
	claims := func(mod func(map[string]any)) map[string]any {
		c := validClaims()
		if mod != nil {
			mod(c)
		}
		return c
	}
	hmacWith := func(secret []byte) func(string) []byte {
		return func(input string) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(input))
			return m.Sum(nil)
		}
	}
	pubDER, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	adminPayload := part(t, claims(func(c map[string]any) { c["role"] = "admin" }))

	// The forged tokens are signed with the right key unless the case is
	// about the signature, so each fails for its own reason only.
	sign := ed25519Signer(key)
	if _, err := iss.Verify(ctx, forge(t, header(nil), claims(nil), sign)); err != nil {
		t.Fatalf("the forging helper makes tokens the issuer refuses: %v", err)
	}
	cases := []struct {
		name  string
		token string
		why   string // what the logged reason says
	}{
		{"empty", "", `three`},
		{"garbage", "not a token", `three`},
		{"two parts", parts[0] + "." + parts[1], `three`},
		{"four parts", good + ".x", `three`},
		{"too long", good + strings.Repeat("A", 5000), `longer`},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), `signature`},
		{"signature not base64", parts[0] + "." + parts[1] + ".!!!", `malformed signature`},
		{"tampered claims", parts[0] + "." + adminPayload + "." + parts[2], `bad signature`},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], `header`},
		{"other server's token", strangerToken, `unknown key`},
		{"other key under our kid", forge(t, header(nil), claims(nil), ed25519Signer(strangerKey)), `bad signature`},
		{"unknown kid", forge(t, header(func(h map[string]any) { h["kid"] = "someone-else" }), claims(nil), sign), `unknown key`},
		{"no kid", forge(t, header(func(h map[string]any) { delete(h, "kid") }), claims(nil), sign), `unknown key`},
		{"alg none", forge(t, header(func(h map[string]any) { h["alg"] = "none" }), claims(nil), func(string) []byte { return nil }), `algorithm "none"`},
		{"alg none, signed", forge(t, header(func(h map[string]any) { h["alg"] = "none" }), claims(nil), sign), `algorithm "none"`},
		{"alg missing", forge(t, header(func(h map[string]any) { delete(h, "alg") }), claims(nil), sign), `algorithm ""`},
		{"HS256 keyed with the raw public key", forge(t, header(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil), hmacWith(iss.PublicKey())), `algorithm "HS256"`},
		{"HS256 keyed with the PEM public key", forge(t, header(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil), hmacWith(pubPEM)), `algorithm "HS256"`},
		{"Ed25519 named otherwise", forge(t, header(func(h map[string]any) { h["alg"] = "Ed25519" }), claims(nil), sign), `algorithm "Ed25519"`},
		{"wrong type", forge(t, header(func(h map[string]any) { h["typ"] = "at+jwt" }), claims(nil), sign), `type`},
		{"critical extension", forge(t, header(func(h map[string]any) { h["crit"] = []string{"exp"} }), claims(nil), sign), `critical`},
		{"expired", forge(t, header(nil), claims(func(c map[string]any) { c["exp"] = t0.Unix() }), sign), `expired`},
		{"not yet valid", forge(t, header(nil), claims(func(c map[string]any) { c["nbf"] = t0.Add(time.Hour).Unix() }), sign), `not valid before`},
		{"wrong issuer", forge(t, header(nil), claims(func(c map[string]any) { c["iss"] = "gantry-evil" }), sign), `issuer`},
		{"no issuer", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "iss") }), sign), `issuer`},
		{"no subject", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "sub") }), sign), `no subject`},
		{"unknown role", forge(t, header(nil), claims(func(c map[string]any) { c["role"] = "root" }), sign), `role`},
		{"no token id", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "jti") }), sign), `no token id`},
		{"exp not a number", forge(t, header(nil), claims(func(c map[string]any) { c["exp"] = "tomorrow" }), sign), `claims`},
		{"claims not an object", signRaw(parts[0], b64.EncodeToString([]byte(`["x"]`)), sign), `claims`},
		{"claims not JSON", signRaw(parts[0], b64.EncodeToString([]byte(`{"iss":`)), sign), `claims`},
		{"claims not base64", signRaw(parts[0], "!!!", sign), `claims`},
	}
	for _, tc := range cases {
		p, err := iss.Verify(ctx, tc.token)
		if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: Verify = %+v, %v; want ErrInvalidToken for %s", tc.name, p, err, tc.why)
			continue
		}
		if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
			t.Errorf("%s: the error quotes the token: %v", tc.name, err)
		}
	}

	// A little clock skew between replicas is tolerated for nbf, not for exp.
	skewed := forge(t, header(nil), claims(func(c map[string]any) { c["nbf"] = t0.Add(10 * time.Second).Unix() }), sign)
	if _, err := iss.Verify(ctx, skewed); err != nil {
		t.Errorf("token from a replica 10 s ahead: %v", err)
	}
	clk.Set(t0.Add(time.Hour - time.Second))
	if _, err := iss.Verify(ctx, good); err != nil {
		t.Errorf("token a second before expiry: %v", err)
	}
	clk.Set(t0.Add(time.Hour))
	if _, err := iss.Verify(ctx, good); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token at its expiry: %v", err)
	}
}

func TestIssueRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, _, _ := newIssuer(t)
	for _, tc := range []struct {
		subject, role string
		ttl           time.Duration
	}{
		{"", auth.RoleUser, 0},
		{"  ", auth.RoleUser, 0},
		{"a\nb", auth.RoleUser, 0},
		{strings.Repeat("x", auth.MaxSubjectLength+1), auth.RoleUser, 0},
		{"alice", "root", 0},
		{"alice", "", 0},
		{"alice", auth.RoleUser, -time.Second},
	} {
		if tok, err := iss.Issue(ctx, tc.subject, tc.role, tc.ttl); err == nil {
			t.Errorf("Issue(%q, %q, %s) = %q, want an error", tc.subject, tc.role, tc.ttl, tok)
		}
	}
	if _, err := auth.NewIssuer(ctx, newKeyStore(t), nil); err == nil {
		t.Error("NewIssuer without a clock succeeded")
	}
}

// signRaw signs already encoded header and claims parts.
func signRaw(header, claims string, sign func(string) []byte) string {
	input := header + "." + claims
	return input + "." + b64.EncodeToString(sign(input))
}
