package ui

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// pageNames are the templates of templates/, each rendered inside layout.html.
var pageNames = []string{"signin", "error", "stacks", "stack", "run", "pools", "pool", "events"}

var funcs = template.FuncMap{
	"runState":     runStateName,
	"runType":      runTypeName,
	"workerStatus": workerStatusName,
	"stateClass":   stateClass,
	"path":         url.PathEscape,
	"ts": func(t *timestamppb.Timestamp) string {
		if t == nil || !t.IsValid() || t.AsTime().IsZero() {
			return ""
		}
		return t.AsTime().UTC().Format(timeLayout)
	},
	"tsISO": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return ""
		}
		return t.AsTime().UTC().Format(time.RFC3339)
	},
	"time": func(t time.Time) string { return t.UTC().Format(timeLayout) },
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"scope": func(s gantryv1.EnvScope) string {
		switch s {
		case gantryv1.EnvScope_ENV_SCOPE_READ_ONLY:
			return "read-only phases"
		case gantryv1.EnvScope_ENV_SCOPE_WRITE_ONLY:
			return "write phases"
		}
		return "all phases"
	},
	"tool": func(t gantryv1.Tool) string {
		if t == gantryv1.Tool_TOOL_TOFU {
			return "tofu"
		}
		return "terraform"
	},
	"kind": func(k gantryv1.StateVersionKind) string {
		return strings.ToLower(strings.TrimPrefix(k.String(), "STATE_VERSION_KIND_"))
	},
	"join":  strings.Join,
	"bytes": func(n int64) string { return fmt.Sprintf("%d B", n) },
	"add":   func(a, b int) int { return a + b },
}

// stateClass is the CSS class of a run or worker state; the state is always
// shown as text too.
func stateClass(s string) string {
	switch s {
	case "FINISHED", "IDLE":
		return "state-ok"
	case "FAILED", "LOST", "STOPPED":
		return "state-bad"
	case "UNCONFIRMED", "DRAINED":
		return "state-attention"
	case "DISCARDED", "CANCELED", "SKIPPED", "EXITED":
		return "state-done"
	}
	return "state-active"
}

func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("ui templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui templates: %w", err)
		}
		pages[name] = t
	}
	return pages, nil
}
