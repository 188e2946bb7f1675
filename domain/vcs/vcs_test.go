package vcs

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

var at = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestEventsConform(t *testing.T) { eventtest.Conformance(t, "VCS", Events()) }

func TestDecide(t *testing.T) {
	add := func(f func(*Add)) Add {
		c := Add{IntegrationID: "vcs_1", Name: "gh", Provider: GitHub, WebhookSecret: []byte("c1"), Actor: "user:a", At: at}
		f(&c)
		return c
	}
	added := VCSIntegrationAdded{IntegrationID: "vcs_1", Name: "gh", Provider: GitHub, APIURL: "https://api.github.com",
		WebhookSecret: []byte("c1"), At: at, Actor: "user:a"}
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		field string // a validation error naming it
		is    error
	}{
		{"add github with the public API", nil, add(func(*Add) {}), []Event{added}, "", nil},
		{"add gitlab with its own API, token and key", nil, add(func(c *Add) {
			c.Provider, c.APIURL, c.Token, c.SSHKey = GitLab, "https://git.example.com/api/v4/", []byte("t"), []byte("k")
		}), []Event{VCSIntegrationAdded{IntegrationID: "vcs_1", Name: "gh", Provider: GitLab, APIURL: "https://git.example.com/api/v4",
			WebhookSecret: []byte("c1"), Token: []byte("t"), SSHKey: []byte("k"), At: at, Actor: "user:a"}}, "", nil},
		{"unknown provider", nil, add(func(c *Add) { c.Provider = "bitbucket" }), nil, "provider", nil},
		{"no webhook secret", nil, add(func(c *Add) { c.WebhookSecret = nil }), nil, "webhook_secret", nil},
		{"bad name", nil, add(func(c *Add) { c.Name = "a b" }), nil, "name", nil},
		{"name like an id", nil, add(func(c *Add) { c.Name = "vcs_x" }), nil, "name", nil},
		{"api url with credentials", nil, add(func(c *Add) { c.APIURL = "https://u:p@example.com" }), nil, "api_url", nil},
		{"api url not http", nil, add(func(c *Add) { c.APIURL = "ftp://example.com" }), nil, "api_url", nil},
		{"bad id", nil, add(func(c *Add) { c.IntegrationID = "stk_1" }), nil, "integration_id", nil},
		{"no actor", nil, add(func(c *Add) { c.Actor = "" }), nil, "actor", nil},
		{"twice", []Event{added}, add(func(*Add) {}), nil, "", domain.ErrAlreadyExists},
		{"unknown command", nil, nil, nil, "command", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, e := range tc.given {
				s.Apply(e)
			}
			got, err := Decide(s, tc.cmd)
			var ve *domain.ValidationError
			switch {
			case tc.field != "":
				if !errors.As(err, &ve) || !containsField(err, tc.field) {
					t.Fatalf("err = %v, want a problem with %s", err, tc.field)
				}
			case tc.is != nil:
				if !errors.Is(err, tc.is) {
					t.Fatalf("err = %v, want %v", err, tc.is)
				}
			case err != nil:
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
		})
	}
}

func containsField(err error, field string) bool {
	var ve *domain.ValidationError
	if errors.As(err, &ve) && ve.Field == field {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if containsField(e, field) {
				return true
			}
		}
	}
	return false
}

func TestApply(t *testing.T) {
	var s State
	s.Apply(&VCSIntegrationAdded{IntegrationID: "vcs_1", Name: "gh", Provider: GitHub, APIURL: "https://api.github.com",
		WebhookSecret: []byte("c1"), Token: []byte("t"), At: at, Actor: "user:a"})
	if !s.Exists() || s.ID() != "vcs_1" || s.Name() != "gh" || s.Provider() != GitHub || string(s.WebhookSecret()) != "c1" ||
		string(s.Token()) != "t" || s.SSHKey() != nil || s.APIURL() != "https://api.github.com" || !s.CreatedAt().Equal(at) || s.CreatedBy() != "user:a" {
		t.Errorf("state after add: %+v", s)
	}
}

func TestRepositoryKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://github.com/Org/App.git", "github.com/org/app"},
		{"https://github.com/org/app/", "github.com/org/app"},
		{"http://github.com/org/app", "github.com/org/app"},
		{"git@github.com:org/app.git", "github.com/org/app"},
		{"ssh://git@github.com:22/org/app.git/", "github.com/org/app"},
		{"https://token@gitlab.example.com/group/sub/app", "gitlab.example.com/group/sub/app"},
		{"file:///srv/repos/app.git", "/srv/repos/app"},
		{"/srv/repos/app", "/srv/repos/app"},
		{"", ""},
		{"not a url", ""},
		{"https://github.com/", ""},
		{"://", ""},
	} {
		if got := RepositoryKey(tc.in); got != tc.want {
			t.Errorf("RepositoryKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
