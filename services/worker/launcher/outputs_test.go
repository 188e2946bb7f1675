package launcher

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestSensitiveOutputsSetting(t *testing.T) {
	token, key, _ := testPool(t)
	env := []string{EnvToken + "=" + token, EnvPoolKey + "=" + key, EnvExecutor + "=" + ExecutorProcess}
	for value, want := range map[string]bool{"": false, "false": false, "true": true, "1": true} {
		cfg, err := FromEnv(append(env, EnvSensitiveOutputs+"="+value), io.Discard)
		if err != nil || cfg.SensitiveOutputs != want {
			t.Errorf("%s=%q: %v, %v; want %v", EnvSensitiveOutputs, value, cfg.SensitiveOutputs, err, want)
		}
	}
	if _, err := FromEnv(append(env, EnvSensitiveOutputs+"=maybe"), io.Discard); err == nil || !strings.Contains(err.Error(), EnvSensitiveOutputs+": ") {
		t.Errorf("a bad value: %v, want an error naming %s", err, EnvSensitiveOutputs)
	}
}

// The server's outputs key is used only when the launcher uploads
// sensitive outputs.
func TestOutputsKey(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	launcher := func(upload bool) *Launcher {
		l := &Launcher{cfg: Config{SensitiveOutputs: upload}}
		l.logp.Store(slog.New(slog.DiscardHandler))
		return l
	}
	if k, err := launcher(false).outputsKey(keyPEM); k != nil || err != nil {
		t.Errorf("not uploading: %v, %v", k, err)
	}
	if k, err := launcher(true).outputsKey(""); k != nil || err != nil {
		t.Errorf("no key from the server: %v, %v", k, err)
	}
	if k, err := launcher(true).outputsKey(keyPEM); err != nil || !priv.PublicKey.Equal(k) {
		t.Errorf("uploading: %v, %v", k, err)
	}
	if _, err := launcher(true).outputsKey("not a key"); err == nil {
		t.Error("a malformed key was accepted")
	}
}
