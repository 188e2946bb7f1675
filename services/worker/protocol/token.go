package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// PoolToken is what a launcher needs to join its pool, handed to the user
// once when the pool is created or reset (GANTRY_TOKEN). It holds the pool
// secret: never log one; String and LogValue leave the secret out.
type PoolToken struct {
	ServerURL   string `json:"server_url"`
	NATSURL     string `json:"nats_url"`
	PoolID      string `json:"pool_id"`
	PoolSecret  string `json:"pool_secret"`
	Certificate string `json:"certificate"`
}

// missing names the fields of t that are empty, in JSON spelling.
func (t PoolToken) missing() []string {
	var out []string
	for _, f := range []struct{ name, value string }{
		{"server_url", t.ServerURL}, {"nats_url", t.NATSURL}, {"pool_id", t.PoolID},
		{"pool_secret", t.PoolSecret}, {"certificate", t.Certificate},
	} {
		if strings.TrimSpace(f.value) == "" {
			out = append(out, f.name)
		}
	}
	return out
}

// String describes the token without its secret.
func (t PoolToken) String() string {
	return fmt.Sprintf("pool token for %s (server %s, NATS %s)", t.PoolID, t.ServerURL, t.NATSURL)
}

// LogValue logs the token without its secret or certificate.
func (t PoolToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("pool_id", t.PoolID), slog.String("server_url", t.ServerURL), slog.String("nats_url", t.NATSURL))
}

// EncodePoolToken returns t as base64 (standard encoding) of its JSON. Every
// field must be set.
func EncodePoolToken(t PoolToken) (string, error) {
	if m := t.missing(); len(m) > 0 {
		return "", fmt.Errorf("encode pool token: missing %s", strings.Join(m, ", "))
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode pool token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodePoolToken parses a token made by EncodePoolToken; surrounding white
// space (from pasting) is ignored. Errors say what is wrong without quoting
// the token, which holds the pool secret.
func DecodePoolToken(s string) (PoolToken, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return PoolToken{}, errors.New("pool token: empty")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return PoolToken{}, errors.New("pool token: not base64; copy the whole token the pool was created or reset with")
	}
	var t PoolToken
	if err := json.Unmarshal(raw, &t); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return PoolToken{}, fmt.Errorf("pool token: field %s must be a %s", typeErr.Field, typeErr.Type)
		}
		// Syntax errors quote the offending input; the offset is enough.
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return PoolToken{}, fmt.Errorf("pool token: not JSON (error at byte %d of the decoded token)", syntaxErr.Offset)
		}
		return PoolToken{}, errors.New("pool token: not a JSON object")
	}
	if m := t.missing(); len(m) > 0 {
		return PoolToken{}, fmt.Errorf("pool token: missing %s", strings.Join(m, ", "))
	}
	return t, nil
}
