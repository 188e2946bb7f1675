package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/services/platform/auth"
)

const keyID = "ak_0192aabbccddeeff0011223344556677"

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	clk := &clock{now: t0}
	key := newEd25519(t)
	ks := keySet(t, key)
	iss := newIssuer(t, ks, clk)

	token, issued, err := iss.Issue(keyID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if issued.KeyID != keyID || !strings.HasPrefix(issued.SessionID, "ses_") || !issued.IssuedAt.Equal(t0) || !issued.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("issued claims %+v", issued)
	}
	c, err := iss.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != issued.KeyID || c.SessionID != issued.SessionID || !c.IssuedAt.Equal(issued.IssuedAt) || !c.ExpiresAt.Equal(issued.ExpiresAt) {
		t.Errorf("verified claims %+v, want the issued %+v", c, issued)
	}
	h, p := decodePart(t, token, 0), decodePart(t, token, 1)
	if h["alg"] != "EdDSA" || h["typ"] != "JWT" || h["kid"] != ks.SigningKeyID() || len(h) != 3 {
		t.Errorf("header %v", h)
	}
	if p["iss"] != "gantry" || p["sub"] != keyID || p["jti"] != c.SessionID || p["iat"] != float64(t0.Unix()) || p["exp"] != float64(t0.Add(time.Hour).Unix()) {
		t.Errorf("claims %v", p)
	}
	other, _, err := iss.Issue(keyID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if oc, err := iss.Verify(other); err != nil || oc.SessionID == c.SessionID {
		t.Errorf("second token: %+v, %v; want its own id", oc, err)
	}

	// Another replica given the same key accepts it.
	replica := newIssuer(t, keySet(t, key), clk)
	if replica.Keys().SigningKeyID() != ks.SigningKeyID() {
		t.Error("the same key has another kid")
	}
	if _, err := replica.Verify(token); err != nil {
		t.Errorf("a replica with the same key: %v", err)
	}

	// A little clock skew between replicas is tolerated; then it expires.
	clk.Set(t0.Add(time.Hour + 20*time.Second))
	if _, err := iss.Verify(token); err != nil {
		t.Errorf("token 20 s after expiry, within the skew: %v", err)
	}
	clk.Set(t0.Add(time.Hour + time.Minute))
	if _, err := iss.Verify(token); !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
}

func TestES256(t *testing.T) {
	t.Parallel()
	clk := &clock{now: t0}
	ks := keySet(t, newP256(t))
	if got := ks.Algorithms(); !slices.Equal(got, []string{"ES256"}) {
		t.Fatalf("algorithms %v, want exactly ES256", got)
	}
	iss := newIssuer(t, ks, clk)
	token, _, err := iss.Issue(keyID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if h := decodePart(t, token, 0); h["alg"] != "ES256" || h["kid"] != ks.SigningKeyID() {
		t.Errorf("header %v", h)
	}
	if c, err := iss.Verify(token); err != nil || c.KeyID != keyID {
		t.Fatalf("verify: %+v, %v", c, err)
	}
}

// TestRotation follows the operator's rotation across replicas: add the new
// public key everywhere, sign with the new key (the old one still
// verifies), then drop the old key (its tokens are refused). The new key
// may be of the same kind or of the other.
func TestRotation(t *testing.T) {
	t.Parallel()
	for _, kinds := range []string{"Ed25519 to Ed25519", "Ed25519 to P-256"} {
		t.Run(kinds, func(t *testing.T) {
			t.Parallel()
			clk := &clock{now: t0}
			oldKey := newEd25519(t)
			var newKey crypto.Signer = newEd25519(t)
			wantAlgs := []string{"EdDSA"}
			if strings.HasSuffix(kinds, "P-256") {
				newKey, wantAlgs = newP256(t), []string{"ES256", "EdDSA"}
			}
			issue := func(iss *auth.Issuer) string {
				tok, _, err := iss.Issue(keyID, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			verifies := func(iss *auth.Issuer, tok string) bool {
				_, err := iss.Verify(tok)
				if err != nil && !errors.Is(err, auth.ErrInvalidToken) {
					t.Fatal(err)
				}
				return err == nil
			}

			before := newIssuer(t, keySet(t, oldKey), clk)
			oldToken := issue(before)
			// Step 1: every replica learns the new public key, still signing with the old.
			added := newIssuer(t, keySet(t, oldKey, newKey.Public()), clk)
			// Step 2: replicas sign with the new key and keep the old one to verify.
			switched := newIssuer(t, keySet(t, newKey, oldKey.Public()), clk)
			newToken := issue(switched)
			if decodePart(t, newToken, 0)["kid"] == decodePart(t, oldToken, 0)["kid"] {
				t.Fatal("the new key signs with the old kid")
			}
			// Step 3: the old key is removed.
			after := newIssuer(t, keySet(t, newKey), clk)

			for _, tc := range []struct {
				name     string
				iss      *auth.Issuer
				old, new bool
			}{
				{"before the rotation", before, true, false},
				{"new key added", added, true, true},
				{"signing with the new key", switched, true, true},
				{"old key removed", after, false, true},
			} {
				if got := verifies(tc.iss, oldToken); got != tc.old {
					t.Errorf("%s: old token verifies %v, want %v", tc.name, got, tc.old)
				}
				if got := verifies(tc.iss, newToken); got != tc.new {
					t.Errorf("%s: new token verifies %v, want %v", tc.name, got, tc.new)
				}
			}
			if got := switched.Keys().Algorithms(); !slices.Equal(got, wantAlgs) {
				t.Errorf("algorithms during the rotation %v, want %v: the keys' and no more", got, wantAlgs)
			}
			if got := switched.Keys().KeyIDs(); len(got) != 2 || !slices.Contains(got, switched.Keys().SigningKeyID()) {
				t.Errorf("key ids %v", got)
			}
			if len(wantAlgs) == 1 {
				if _, err := after.Verify(oldToken); err == nil || !strings.Contains(err.Error(), "unknown key") {
					t.Errorf("old token after the removal: %v, want a refusal naming the unknown key", err)
				}
			} else if _, err := after.Verify(oldToken); err == nil || !strings.Contains(err.Error(), `algorithm "EdDSA" is not accepted`) {
				t.Errorf("old token after the removal: %v, want its algorithm refused", err)
			}
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	t.Parallel()
	clk := &clock{now: t0}
	key := newEd25519(t)
	ecKey := newP256(t)
	// The server signs with an Ed25519 key and also accepts a P-256 key, so
	// that algorithm confusions between the two can be tried.
	ks := keySet(t, key, ecKey.Public())
	iss := newIssuer(t, ks, clk)
	ecKID := ""
	for _, kid := range ks.KeyIDs() {
		if kid != ks.SigningKeyID() {
			ecKID = kid
		}
	}
	good, _, err := iss.Issue(keyID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	// A second server with its own key.
	strangerKey := newEd25519(t)
	strangerToken, _, err := newIssuer(t, keySet(t, strangerKey), clk).Issue(keyID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	header := func(mod func(map[string]any)) map[string]any {
		h := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": ks.SigningKeyID()}
		if mod != nil {
			mod(h)
		}
		return h
	}
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "gantry", "sub": keyID, "jti": "ses_1", "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
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
	es256 := func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, ecKey, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	otherPayload := part(t, claims(func(c map[string]any) { c["sub"] = "ak_someoneelse" }))
	rawPub := []byte(key.Public().(ed25519.PublicKey))

	// The forged tokens are signed with the right key unless the case is
	// about the signature, so each fails for its own reason only.
	sign := ed25519Signer(key)
	if _, err := iss.Verify(forge(t, header(nil), claims(nil), sign)); err != nil {
		t.Fatalf("the forging helper makes tokens the issuer refuses: %v", err)
	}
	ecHeader := header(func(h map[string]any) { h["alg"], h["kid"] = "ES256", ecKID })
	if _, err := iss.Verify(forge(t, ecHeader, claims(nil), es256)); err != nil {
		t.Fatalf("the ES256 forging helper makes tokens the issuer refuses: %v", err)
	}
	cases := []struct {
		name   string
		token  string
		reason string // what the logged reason says
	}{
		{"empty", "", `three`},
		{"garbage", "not a token", `three`},
		{"two parts", parts[0] + "." + parts[1], `three`},
		{"four parts", good + ".x", `three`},
		{"too long", good + strings.Repeat("A", 5000), `longer`},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), `signature`},
		{"signature not base64", parts[0] + "." + parts[1] + ".!!!", `signature`},
		{"tampered claims", parts[0] + "." + otherPayload + "." + parts[2], `signature`},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], `header`},
		{"other server's token", strangerToken, `unknown key`},
		{"other key under our kid", forge(t, header(nil), claims(nil), ed25519Signer(strangerKey)), `signature`},
		{"unknown kid", forge(t, header(func(h map[string]any) { h["kid"] = "someone-else" }), claims(nil), sign), `unknown key`},
		{"no kid", forge(t, header(func(h map[string]any) { delete(h, "kid") }), claims(nil), sign), `unknown key`},
		{"alg none", forge(t, header(func(h map[string]any) { h["alg"] = "none" }), claims(nil), func(string) []byte { return nil }), `algorithm "none"`},
		{"alg none, signed", forge(t, header(func(h map[string]any) { h["alg"] = "none" }), claims(nil), sign), `algorithm "none"`},
		{"alg missing", forge(t, header(func(h map[string]any) { delete(h, "alg") }), claims(nil), sign), `algorithm ""`},
		{"HS256 keyed with the raw public key", forge(t, header(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil), hmacWith(rawPub)), `algorithm "HS256"`},
		{"HS256 keyed with the PEM public key", forge(t, header(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil), hmacWith(publicPEM(t, key.Public()))), `algorithm "HS256"`},
		{"RS256", forge(t, header(func(h map[string]any) { h["alg"] = "RS256" }), claims(nil), sign), `algorithm "RS256"`},
		{"Ed25519 named otherwise", forge(t, header(func(h map[string]any) { h["alg"] = "Ed25519" }), claims(nil), sign), `algorithm "Ed25519"`},
		{"ES256 under the Ed25519 key's kid", forge(t, header(func(h map[string]any) { h["alg"] = "ES256" }), claims(nil), es256), `does not match key`},
		{"EdDSA under the P-256 key's kid", forge(t, header(func(h map[string]any) { h["kid"] = ecKID }), claims(nil), sign), `does not match key`},
		{"wrong type", forge(t, header(func(h map[string]any) { h["typ"] = "at+jwt" }), claims(nil), sign), `type`},
		{"critical extension", forge(t, header(func(h map[string]any) { h["crit"] = []string{"exp"} }), claims(nil), sign), `critical`},
		{"expired", forge(t, header(nil), claims(func(c map[string]any) { c["exp"] = t0.Add(-time.Minute).Unix() }), sign), `expired`},
		{"no expiry", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "exp") }), sign), `exp`},
		{"not yet valid", forge(t, header(nil), claims(func(c map[string]any) { c["nbf"] = t0.Add(time.Hour).Unix() }), sign), `not valid yet`},
		{"wrong issuer", forge(t, header(nil), claims(func(c map[string]any) { c["iss"] = "gantry-evil" }), sign), `issuer`},
		{"no issuer", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "iss") }), sign), `iss`},
		{"no subject", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "sub") }), sign), `not an API key id`},
		{"subject not a key id", forge(t, header(nil), claims(func(c map[string]any) { c["sub"] = "admin" }), sign), `not an API key id`},
		{"no token id", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "jti") }), sign), `no session token id`},
		{"no issue time", forge(t, header(nil), claims(func(c map[string]any) { delete(c, "iat") }), sign), `no issue time`},
		{"exp not a number", forge(t, header(nil), claims(func(c map[string]any) { c["exp"] = "tomorrow" }), sign), `claim`},
		{"claims not an object", signRaw(parts[0], b64.EncodeToString([]byte(`["x"]`)), sign), `claim`},
		{"claims not JSON", signRaw(parts[0], b64.EncodeToString([]byte(`{"iss":`)), sign), `claim`},
		{"claims not base64", signRaw(parts[0], "!!!", sign), `claim`},
	}
	for _, tc := range cases {
		c, err := iss.Verify(tc.token)
		if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: Verify = %+v, %v; want ErrInvalidToken for %s", tc.name, c, err, tc.reason)
			continue
		}
		if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
			t.Errorf("%s: the error quotes the token: %v", tc.name, err)
		}
	}

	// A little clock skew between replicas is tolerated for nbf.
	skewed := forge(t, header(nil), claims(func(c map[string]any) { c["nbf"] = t0.Add(10 * time.Second).Unix() }), sign)
	if _, err := iss.Verify(skewed); err != nil {
		t.Errorf("token from a replica 10 s ahead: %v", err)
	}
}

func TestIssueRefusesBadInput(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t, keySet(t, newEd25519(t)), &clock{now: t0})
	for _, tc := range []struct {
		keyID string
		ttl   time.Duration
	}{
		{"", time.Hour},
		{"admin", time.Hour},
		{"wp_1", time.Hour},
		{keyID, 0},
		{keyID, -time.Second},
	} {
		if tok, _, err := iss.Issue(tc.keyID, tc.ttl); err == nil {
			t.Errorf("Issue(%q, %s) = %q, want an error", tc.keyID, tc.ttl, tok)
		}
	}
	if _, err := auth.NewIssuer(keySet(t, newEd25519(t)), nil); err == nil {
		t.Error("NewIssuer without a clock succeeded")
	}
	if _, err := auth.NewIssuer(nil, time.Now); err == nil {
		t.Error("NewIssuer without keys succeeded")
	}
}
