package launcher

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/protocol"
)

// testPool returns a pool token whose certificate is for key, and the key
// as GANTRY_POOL_PRIVATE_KEY holds it.
func testPool(t *testing.T) (token, key string, priv *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wp_test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	token, err = protocol.EncodePoolToken(protocol.PoolToken{ServerURL: "http://127.0.0.1:1", NATSURL: "nats://127.0.0.1:2",
		PoolID: "wp_test", PoolSecret: "secret-of-the-pool", Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key = base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	return token, key, priv
}

func TestFromEnvReadsEverySetting(t *testing.T) {
	token, key, _ := testPool(t)
	cfg, err := FromEnv([]string{
		EnvToken + "=" + token, EnvPoolKey + "=" + key,
		EnvMaskEnvs + "=AWS_SECRET, OTHER",
		EnvRunLogsStdout + "=true",
		EnvLogsTimeout + "=90s", EnvRunTimeout + "=2h", EnvShutdownGrace + "=30s",
		EnvDebug + "=1",
		EnvWhitelistEnvs + "=AWS_SECRET,ro_READER,wo_WRITER,UNSET",
		"AWS_SECRET=s", "READER=r", "WRITER=w",
		EnvMetadataPrefix + "instance_id=i-123", EnvMetadataPrefix + "zone=a",
		"PATH=/opt/bin:/usr/bin",
		EnvRepoCacheDir + "=/var/cache/gantry-repos",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token.PoolID != "wp_test" || cfg.PoolKey == nil {
		t.Errorf("token/key not read: %v", cfg.Token)
	}
	if strings.Join(cfg.MaskNames, ",") != "AWS_SECRET,OTHER" {
		t.Errorf("MaskNames = %v", cfg.MaskNames)
	}
	if cfg.RunLogs == nil || !cfg.Debug {
		t.Errorf("RunLogs set %v, Debug %v", cfg.RunLogs != nil, cfg.Debug)
	}
	if cfg.Executor.LogsTimeout != 90*time.Second || cfg.Executor.RunTimeout != 2*time.Hour || cfg.ShutdownGrace != 30*time.Second {
		t.Errorf("timeouts = %v %v %v", cfg.Executor.LogsTimeout, cfg.Executor.RunTimeout, cfg.ShutdownGrace)
	}
	if cfg.Executor.Path != "/opt/bin:/usr/bin" {
		t.Errorf("Path = %q", cfg.Executor.Path)
	}
	if cfg.Executor.RepoCacheDir != "/var/cache/gantry-repos" {
		t.Errorf("RepoCacheDir = %q", cfg.Executor.RepoCacheDir)
	}
	want := map[string]stack.Scope{"AWS_SECRET": stack.ScopeAll, "READER": stack.ScopeReadOnly, "WRITER": stack.ScopeWriteOnly}
	if len(cfg.Whitelist) != len(want) {
		t.Errorf("Whitelist = %v", cfg.Whitelist)
	}
	for _, v := range cfg.Whitelist {
		if want[v.Name] != v.Scope {
			t.Errorf("whitelisted %s has scope %q", v.Name, v.Scope)
		}
	}
	if cfg.Metadata["instance_id"] != "i-123" || cfg.Metadata["zone"] != "a" || len(cfg.Metadata) != 2 {
		t.Errorf("Metadata = %v", cfg.Metadata)
	}
}

func TestFromEnvDefaults(t *testing.T) {
	token, key, _ := testPool(t)
	cfg, err := FromEnv([]string{EnvToken + "=" + token, EnvPoolKey + "=" + key}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The settings table's defaults are the executor's and the launcher's.
	if cfg.Executor.LogsTimeout != executor.DefaultLogsTimeout || cfg.Executor.RunTimeout != executor.DefaultRunTimeout ||
		cfg.ShutdownGrace != DefaultShutdownGrace || cfg.RunLogs != nil || cfg.Debug || cfg.SensitiveOutputs || len(cfg.Whitelist) != 0 {
		t.Errorf("unexpected settings: %+v", cfg)
	}
	if want := filepath.Join(os.TempDir(), "gantry-repos"); cfg.Executor.RepoCacheDir != want {
		t.Errorf("RepoCacheDir = %q, want %q", cfg.Executor.RepoCacheDir, want)
	}
	cfg, err = FromEnv([]string{EnvToken + "=" + token, EnvPoolKey + "=" + key, EnvWorkDir + "=/srv/runs"}, io.Discard)
	if err != nil || cfg.Executor.RepoCacheDir != "/srv/runs/gantry-repos" {
		t.Errorf("with a work dir: RepoCacheDir = %q (%v)", cfg.Executor.RepoCacheDir, err)
	}
	cfg, err = FromEnv([]string{EnvToken + "=" + token, EnvPoolKey + "=" + key, EnvRepoCacheDir + "=off"}, io.Discard)
	if err != nil || cfg.Executor.RepoCacheDir != "" {
		t.Errorf("off: RepoCacheDir = %q (%v)", cfg.Executor.RepoCacheDir, err)
	}
}

// The defaults the settings table documents for what the executor fills
// in itself are the executor's.
func TestSettingsTableDefaultsAreTheExecutors(t *testing.T) {
	for _, c := range []struct{ documented, actual string }{
		{settings.DefaultRunnerImage.Default, executor.DefaultRunnerImage},
		{settings.WorkerNetwork.Default, executor.DefaultNetwork},
	} {
		if c.documented != c.actual {
			t.Errorf("the settings table says %q, the executor uses %q", c.documented, c.actual)
		}
	}
}

func TestFromEnvNamesTheBadVariable(t *testing.T) {
	token, key, _ := testPool(t)
	_, otherKey, _ := testPool(t)
	good := []string{EnvToken + "=" + token, EnvPoolKey + "=" + key}
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"no token", []string{EnvPoolKey + "=" + key}, EnvToken + ": not set"},
		{"garbage token", []string{EnvToken + "=%%%", EnvPoolKey + "=" + key}, EnvToken + ": pool token: not base64"},
		{"no key", []string{EnvToken + "=" + token}, EnvPoolKey + ": not set"},
		{"key not base64", []string{EnvToken + "=" + token, EnvPoolKey + "=@@"}, EnvPoolKey + ": not base64"},
		{"another pool's key", []string{EnvToken + "=" + token, EnvPoolKey + "=" + otherKey}, EnvPoolKey + ": does not match the pool's certificate"},
		{"logs timeout", append(good, EnvLogsTimeout+"=soon"), EnvLogsTimeout + `: "soon" is not a duration`},
		{"run timeout", append(good, EnvRunTimeout+"=-5m"), EnvRunTimeout + `: "-5m" must be positive`},
		{"debug", append(good, EnvDebug+"=maybe"), EnvDebug + `: "maybe" is not a boolean`},
		{"stdout", append(good, EnvRunLogsStdout+"=yes please"), EnvRunLogsStdout + ": "},
		{"mask", append(good, EnvMaskEnvs+"=A-B"), EnvMaskEnvs + `: "A-B" lists "A-B", which is not a variable name`},
		{"whitelist", append(good, EnvWhitelistEnvs+"=9X"), EnvWhitelistEnvs + ": "},
		{"metadata", append(good, EnvMetadataPrefix+"=x"), EnvMetadataPrefix + ": a metadata variable needs a key"},
		{"repo cache", append(good, EnvRepoCacheDir+"=cache"), EnvRepoCacheDir + `: "cache" is not an absolute path`},
	}
	for _, c := range cases {
		_, err := FromEnv(c.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret-of-the-pool") || strings.Contains(err.Error(), key)) {
			t.Errorf("%s: the error quotes a secret: %v", c.name, err)
		}
	}
}

func TestParsePoolKeyAcceptsPEMAndRefusesOthers(t *testing.T) {
	_, key, priv := testPool(t)
	raw, _ := base64.StdEncoding.DecodeString(key)
	for _, in := range []string{key, string(raw)} {
		k, err := ParsePoolKey(in)
		if err != nil {
			t.Fatal(err)
		}
		if !k.(*ecdsa.PrivateKey).Equal(priv) {
			t.Error("a different key came back")
		}
	}
	cert := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}))
	if _, err := ParsePoolKey(cert); err == nil || !strings.Contains(err.Error(), `"CERTIFICATE" block`) {
		t.Errorf("a certificate as key: %v", err)
	}
}

// TestFromEnvDockerSettings: the Docker executor's settings are read, and
// refused at start, each naming its variable, when malformed.
func TestFromEnvDockerSettings(t *testing.T) {
	token, key, _ := testPool(t)
	base := []string{EnvToken + "=" + token, EnvPoolKey + "=" + key, "PATH=/usr/bin"}
	cache, auths := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(auths, "config.json"), []byte(`{"auths": {
		"https://index.docker.io/v1/": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("me:pw"))+`"},
		"ghcr.io": {"username": "bot", "password": "tok"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := FromEnv(append(base, EnvExecutor+"=docker", EnvDefaultImage+"=ghcr.io/acme/runner:2",
		EnvExtraMounts+"="+cache+":/cache", EnvROExtraMounts+"="+cache+":/ro:ro", EnvWOExtraMounts+"="+cache+":/wo",
		EnvNetwork+"=builds", EnvRuntime+"=runsc", EnvDockerConfig+"="+auths, EnvDockerHost+"=tcp://127.0.0.1:2375"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Executor.Docker
	if d == nil || d.DefaultImage != "ghcr.io/acme/runner:2" || d.Network != "builds" || d.Runtime != "runsc" ||
		d.Host != "tcp://127.0.0.1:2375" || !d.KeepWarm || len(d.Mounts) != 1 || d.Mounts[0].Target != "/cache" ||
		len(d.ReadOnlyMounts) != 1 || !d.ReadOnlyMounts[0].ReadOnly || len(d.WriteMounts) != 1 {
		t.Fatalf("docker settings = %+v", d)
	}
	if d.RegistryAuth["docker.io"] == "" || d.RegistryAuth["ghcr.io"] == "" {
		t.Errorf("registry credentials = %v", d.RegistryAuth)
	}
	if cfg, err := FromEnv(append(base, EnvExecutor+"=process"), io.Discard); err != nil || cfg.Executor.Docker != nil {
		t.Errorf("process executor: %v, docker %v", err, cfg.Executor.Docker)
	}

	helper := t.TempDir()
	if err := os.WriteFile(filepath.Join(helper, "config.json"), []byte(`{"credsStore": "desktop"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		env  []string
		want []string
	}{
		"executor":      {[]string{EnvExecutor + "=kubernetes"}, []string{EnvExecutor, `"kubernetes"`}},
		"relative":      {[]string{EnvExecutor + "=docker", EnvExtraMounts + "=cache:/cache"}, []string{EnvExtraMounts, "absolute"}},
		"missing path":  {[]string{EnvExecutor + "=docker", EnvROExtraMounts + "=/no/such/dir:/x"}, []string{EnvROExtraMounts, "/no/such/dir"}},
		"socket":        {[]string{EnvExecutor + "=docker", EnvWOExtraMounts + "=/var/run/docker.sock:/var/run/docker.sock"}, []string{EnvWOExtraMounts, "socket"}},
		"malformed":     {[]string{EnvExecutor + "=docker", EnvExtraMounts + "=/a:/b:/c:/d"}, []string{EnvExtraMounts, "/host/path:/container/path"}},
		"user":          {[]string{EnvExecutor + "=docker", EnvWorkerUser + "=gantry"}, []string{EnvWorkerUser, "numeric"}},
		"config dir":    {[]string{EnvExecutor + "=docker", EnvDockerConfig + "=/no/such/dir"}, []string{EnvDockerConfig}},
		"creds helper":  {[]string{EnvExecutor + "=docker", EnvDockerConfig + "=" + helper}, []string{EnvDockerConfig, "credential helper"}},
		"token to runs": {[]string{EnvWhitelistEnvs + "=PATH,GANTRY_TOKEN"}, []string{EnvWhitelistEnvs, "never goes to a run"}},
	} {
		_, err := FromEnv(append(append([]string(nil), base...), tc.env...), io.Discard)
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: FromEnv = %v, want an error with %q", name, err, want)
			}
		}
	}
}
