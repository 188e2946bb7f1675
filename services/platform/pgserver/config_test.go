package pgserver

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "minimal", cfg: Config{DataDir: "x"}},
		{name: "missing data dir", cfg: Config{}, wantErr: []string{"data dir is required"}},
		{
			name:    "all problems at once",
			cfg:     Config{Port: 70000, BinDir: "/nonexistent", Settings: map[string]string{"port": "1", "bad name": "x"}},
			wantErr: []string{"data dir is required", "port 70000", "bin dir /nonexistent", `"port" is managed`, `"bad name" is not a valid`},
		},
		{name: "custom setting", cfg: Config{DataDir: "x", Settings: map[string]string{"auto_explain.log_min_duration": "0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tt.cfg)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestSocketDirFallsBackToTCPForLongPaths(t *testing.T) {
	if got := socketDir("/tmp/short"); got != "/tmp/short" {
		t.Fatalf("socketDir(short) = %q", got)
	}
	long := "/tmp/" + strings.Repeat("d", 100)
	if got := socketDir(long); got != "" {
		t.Fatalf("socketDir(long) = %q, want no socket", got)
	}
}
