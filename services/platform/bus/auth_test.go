package bus

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// withCredentials returns raw with user:password added.
func withCredentials(t *testing.T, raw, user, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// connectRaw connects to url with opts only: none of Connect's credentials.
func connectRaw(url string, opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second), nats.NoReconnect()}, opts...)...)
}

func TestServiceUserHasFullAccess(t *testing.T) {
	t.Parallel()
	b := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	user, password := b.ServiceCredentials()
	if user != ServiceUser || len(password) < minServicePasswordLength {
		t.Fatalf("service credentials = %q and a %d-character password", user, len(password))
	}
	nc := connect(t, b, "service")
	// Every subject of every pool, and the JetStream API.
	sub, err := nc.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{protocol.WorkerSubject("wp_a", "wkr_1", "assign"), protocol.HeartbeatSubject("wp_b", "wkr_2"), "gantry.events.x"} {
		if err := nc.Publish(subject, []byte(subject)); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil || msg.Subject != subject {
			t.Fatalf("received %v, %v; want a message on %s", msg, err, subject)
		}
	}
	js := publishAll(t, nc, "a")
	if got := consumeAll(t, js, 1); got[0] != "a" {
		t.Fatalf("consumed %v", got)
	}
}

func TestRefusedConnections(t *testing.T) {
	t.Parallel()
	b := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	_, password := b.ServiceCredentials()
	tests := []struct {
		name string
		opts []nats.Option
	}{
		{"no credentials", nil},
		{"service user, wrong password", []nats.Option{nats.UserInfo(ServiceUser, password+"x")}},
		{"service user, no password", []nats.Option{nats.UserInfo(ServiceUser, "")}},
		{"service password as a token", []nats.Option{nats.Token(password)}},
		{"pool without a verifier", []nats.Option{PoolCredentials("wp_a", "secret")}},
		{"wildcard user", []nats.Option{nats.UserInfo("*", password)}},
		{"user that is not a pool id", []nats.Option{nats.UserInfo("wp_a.b", "secret")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := connectRaw(b.URL(), tt.opts...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("err = %v, want %v", err, nats.ErrAuthorization)
			}
		})
	}
}

func TestConfiguredServicePassword(t *testing.T) {
	t.Parallel()
	const password = "a configured password"
	store := t.TempDir()
	b := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: store, ServicePassword: password})
	if _, got := b.ServiceCredentials(); got != password {
		t.Fatal("ServiceCredentials does not return the configured password")
	}
	nc, err := connectRaw(b.URL(), nats.UserInfo(ServiceUser, password))
	if err != nil {
		t.Fatalf("connect with the configured password: %v", err)
	}
	nc.Close()
	if _, err := os.Stat(filepath.Join(store, servicePasswordFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a password file was written although the password is configured: %v", err)
	}
}

func TestGeneratedServicePasswordIsKeptInTheStore(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	first := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: store})
	_, password := first.ServiceCredentials()
	first.Shutdown()

	info, err := os.Stat(filepath.Join(store, servicePasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v, want 0600", info.Mode().Perm())
	}
	second := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: store})
	if _, again := second.ServiceCredentials(); again != password {
		t.Fatal("a restart on the same store made a new service password")
	}
	other := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if _, different := other.ServiceCredentials(); different == password {
		t.Fatal("two stores share a generated service password")
	}
	if matches, _ := filepath.Glob(filepath.Join(store, servicePasswordFile+".*")); len(matches) != 0 {
		t.Fatalf("temporary password files left behind: %v", matches)
	}
}

func TestTruncatedPasswordFileIsAnError(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	if err := os.WriteFile(filepath.Join(store, servicePasswordFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Config{Listen: "127.0.0.1:-1", StoreDir: store})
	if err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Fatalf("Start = %v, want an error about the password file", err)
	}
}

func TestExternalCredentials(t *testing.T) {
	t.Parallel()
	embedded := startBus(t, Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	user, password := embedded.ServiceCredentials()

	t.Run("from the URL", func(t *testing.T) {
		external := startBus(t, Config{URL: withCredentials(t, embedded.URL(), user, password)})
		if strings.Contains(external.URL(), password) || external.URL() != embedded.URL() {
			t.Fatalf("URL = %s, want %s", external.URL(), embedded.URL())
		}
		if gotUser, gotPassword := external.ServiceCredentials(); gotUser != user || gotPassword != password {
			t.Fatal("ServiceCredentials does not return the URL's credentials")
		}
		nc := connect(t, external, "service")
		if err := nc.Publish(protocol.WorkerSubject("wp_a", "wkr_1", "assign"), nil); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		external := startBus(t, Config{URL: withCredentials(t, embedded.URL(), user, "not-"+password)})
		_, err := external.Connect("service")
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("Connect = %v, want %v", err, nats.ErrAuthorization)
		}
	})
	t.Run("none", func(t *testing.T) {
		external := startBus(t, Config{URL: embedded.URL()})
		_, err := external.Connect("service")
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("Connect = %v, want %v", err, nats.ErrAuthorization)
		}
	})
	t.Run("DisconnectPool", func(t *testing.T) {
		external := startBus(t, Config{URL: embedded.URL()})
		if _, err := external.DisconnectPool("wp_a"); !errors.Is(err, ErrNotEmbedded) {
			t.Fatalf("DisconnectPool = %v, want %v", err, ErrNotEmbedded)
		}
	})
}

func TestExternalServers(t *testing.T) {
	const secret = "s3cr3t-pw"
	tests := []struct {
		name      string
		raw       string
		wantClean string
		wantCred  credential
		wantErr   string
	}{
		{name: "no credentials", raw: "nats://a:4222, tls://b", wantClean: "nats://a:4222,tls://b"},
		{name: "credentials", raw: "nats://gantry:" + secret + "@a:4222", wantClean: "nats://a:4222", wantCred: credential{"gantry", secret}},
		{name: "escaped password", raw: "nats://gantry:p%40ss%3Aword@a", wantClean: "nats://a", wantCred: credential{"gantry", "p@ss:word"}},
		{name: "same on every URL", raw: "nats://u:" + secret + "@a,nats://u:" + secret + "@b", wantClean: "nats://a,nats://b", wantCred: credential{"u", secret}},
		{name: "on one URL of several", raw: "nats://u:" + secret + "@a,nats://b", wantClean: "nats://a,nats://b", wantCred: credential{"u", secret}},
		{name: "different", raw: "nats://u:" + secret + "@a,nats://u:other-" + secret + "@b", wantErr: "must have the same"},
		{name: "user only", raw: "nats://" + secret + "@a", wantErr: "user:password"},
		{name: "unparseable with a password", raw: "nats://u:" + secret + "%zz@a", wantErr: "invalid URL escape"},
		{name: "bad scheme with a password", raw: "http://u:" + secret + "@a", wantErr: "scheme must be nats or tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean, cred, err := externalServers(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error quotes the password: %v", err)
				}
				if verr := (Config{URL: tt.raw}).Validate(); verr == nil || strings.Contains(verr.Error(), secret) {
					t.Fatalf("Validate = %v, want an error without the password", verr)
				}
				return
			}
			if err != nil || clean != tt.wantClean || cred != tt.wantCred {
				t.Fatalf("externalServers = %q, %+v, %v; want %q, %+v", clean, cred, err, tt.wantClean, tt.wantCred)
			}
		})
	}
}

func TestUnreachableExternalErrorHidesPassword(t *testing.T) {
	t.Parallel()
	const secret = "do-not-print-me"
	_, err := Start(context.Background(), Config{URL: "nats://gantry:" + secret + "@127.0.0.1:1"})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("Start = %v, want an error without the password", err)
	}
}
