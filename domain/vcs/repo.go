package vcs

import (
	"net/url"
	"strings"
)

// RepositoryKey reduces a repository URL to "host/path" in lower case,
// without scheme, user, port, ".git" suffix or trailing slash, so that the
// clone, SSH and web URLs a webhook names match the URL a stack was created
// with however it was spelled: https://github.com/Org/App.git,
// git@github.com:org/app and ssh://git@github.com/org/app/ all give
// "github.com/org/app". Local paths and file:// URLs keep their path. It
// returns "" for what is not a repository URL.
func RepositoryKey(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	var host, path string
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return ""
		}
		host, path = u.Hostname(), u.Path
	case strings.HasPrefix(raw, "/"):
		path = raw
	default:
		// scp-like: user@host:path
		at := strings.Index(raw, "@")
		colon := strings.Index(raw, ":")
		if colon < 0 || colon < at {
			return ""
		}
		host, path = raw[at+1:colon], raw[colon+1:]
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	path = strings.Trim(path, "/")
	if path == "" {
		return ""
	}
	return strings.ToLower(host + "/" + path)
}
