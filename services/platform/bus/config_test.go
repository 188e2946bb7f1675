package bus

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "random port", cfg: Config{Listen: "127.0.0.1:-1"}},
		{name: "all interfaces", cfg: Config{Listen: "0.0.0.0:4222"}},
		{name: "external cluster", cfg: Config{URL: "nats://a:4222, tls://b"}},
		{name: "no port", cfg: Config{Listen: "127.0.0.1"}, wantErr: "missing port"},
		{name: "no host", cfg: Config{Listen: ":1984"}, wantErr: "host is required"},
		{name: "bad port", cfg: Config{Listen: "127.0.0.1:99999"}, wantErr: "port must be"},
		{name: "bad scheme", cfg: Config{URL: "http://a:4222"}, wantErr: "scheme must be nats or tls"},
		{name: "no host in URL", cfg: Config{URL: "nats://:4222"}, wantErr: "host is required"},
		{name: "service password", cfg: Config{ServicePassword: "sixteen chars ok"}},
		{name: "short service password", cfg: Config{ServicePassword: "too short"}, wantErr: "at least 16 characters"},
		{name: "service password with an external NATS", cfg: Config{URL: "nats://a", ServicePassword: "sixteen chars ok"}, wantErr: "give an external NATS's credentials in its URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestListenPortZeroMeansRandom(t *testing.T) {
	_, port, err := listenAddress("127.0.0.1:0")
	if err != nil || port != -1 {
		t.Fatalf("listenAddress(:0) = %d, %v; want -1 (random), not nats-server's default port", port, err)
	}
}
