package protocol_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

func TestPoolTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tok := protocol.PoolToken{ServerURL: "https://gantry.example.com", NATSURL: "nats://gantry.example.com:1984",
		PoolID: "wp_01J", PoolSecret: "c2VjcmV0", Certificate: "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n"}
	s, err := protocol.EncodePoolToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not standard base64: %v", err)
	}
	var fields map[string]string
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"server_url": tok.ServerURL, "nats_url": tok.NATSURL, "pool_id": tok.PoolID, "pool_secret": tok.PoolSecret, "certificate": tok.Certificate}
	if fmt.Sprint(fields) != fmt.Sprint(want) {
		t.Errorf("JSON %v, want %v", fields, want)
	}
	got, err := protocol.DecodePoolToken("  " + s + "\n")
	if err != nil || got != tok {
		t.Fatalf("decoded %+v, %v", got, err)
	}

	// Neither printing nor logging shows the secret.
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("joined", "token", tok)
	for _, shown := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), logs.String()} {
		if strings.Contains(shown, tok.PoolSecret) || !strings.Contains(shown, tok.PoolID) {
			t.Errorf("printed as %q", shown)
		}
	}
}

func TestPoolTokenErrors(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	full := `"server_url":"http://s","nats_url":"nats://n","pool_id":"wp_1","pool_secret":"SECRETVALUE","certificate":"c"`
	cases := []struct{ name, token, says string }{
		{"not base64", "SECRETVALUE!!!", "not base64"},
		{"empty", " \n", "empty"},
		{"empty object", b64("{}"), "missing server_url, nats_url, pool_id, pool_secret, certificate"},
		{"not JSON", b64("SECRETVALUE"), "not JSON"},
		{"truncated JSON", b64("{" + full), "not JSON"},
		{"JSON array", b64(`["SECRETVALUE"]`), "not a JSON object"},
		{"wrong type", b64(`{"pool_id": 7, "pool_secret":"SECRETVALUE"}`), "pool_id must be a string"},
		{"missing secret", b64(`{"server_url":"http://s","nats_url":"nats://n","pool_id":"wp_1","certificate":"c"}`), "missing pool_secret"},
		{"missing two", b64(`{"server_url":"http://s","pool_id":"wp_1","pool_secret":"SECRETVALUE"}`), "missing nats_url, certificate"},
		{"blank certificate", b64(`{` + strings.Replace(full, `"certificate":"c"`, `"certificate":" "`, 1) + `}`), "missing certificate"},
	}
	for _, tc := range cases {
		_, err := protocol.DecodePoolToken(tc.token)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.says)
			continue
		}
		if strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("%s: error quotes the token: %v", tc.name, err)
		}
	}
	if _, err := protocol.DecodePoolToken(b64("{" + full + "}")); err != nil {
		t.Errorf("the complete token: %v", err)
	}
	if _, err := protocol.EncodePoolToken(protocol.PoolToken{PoolID: "wp_1"}); err == nil || !strings.Contains(err.Error(), "missing server_url") {
		t.Errorf("encoding an incomplete token: %v", err)
	}
}
