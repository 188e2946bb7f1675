package executor

import "testing"

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/acme/infra.git", "https://github.com/acme/infra.git"},
		{"https://x-access-token:ghs_secret@github.com/acme/infra.git", "https://github.com/acme/infra.git"},
		{"https://ghp_token@github.com/acme/infra.git", "https://github.com/acme/infra.git"},
		{"ssh://git@github.com/acme/infra.git", "ssh://git@github.com/acme/infra.git"},
		{"ssh://git:hunter2@example.com/infra.git", "ssh://example.com/infra.git"},
		{"git@github.com:acme/infra.git", "git@github.com:acme/infra.git"},
		{"file:///srv/repos/infra", "file:///srv/repos/infra"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
