package settings

import (
	"fmt"
	"slices"
	"strings"
)

// A generated section of the docs starts with DocBegin(section) and ends
// with DocEnd; between them is Markdown(Section(section)).
const (
	docBeginPrefix = "<!-- BEGIN GENERATED settings "
	docBeginSuffix = " (from services/platform/settings/table.go: go test ./cmd/gantry -run TestConfigurationDoc -update) -->"
	DocEnd         = "<!-- END GENERATED -->"
)

// DocBegin is the line that starts the generated section of the docs.
func DocBegin(section string) string { return docBeginPrefix + section + docBeginSuffix }

// ParseDocBegin returns the section a DocBegin line names.
func ParseDocBegin(line string) (section string, ok bool) {
	rest, ok := strings.CutPrefix(line, docBeginPrefix)
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, docBeginSuffix)
}

// Section returns the variables of a section of the docs: "all" (every
// one), "launcher" (a launcher's, but the Docker executor's) or
// "docker-executor".
func Section(name string) ([]*Var, bool) {
	switch name {
	case "all":
		return All(), true
	case "launcher":
		var out []*Var
		for _, v := range For(launcher) {
			if !slices.Contains(DockerExecutor, v) {
				out = append(out, v)
			}
		}
		return out, true
	case "docker-executor":
		return slices.Clone(DockerExecutor), true
	}
	return nil, false
}

// Markdown is the table of vars the docs show.
func Markdown(vars []*Var) string {
	var b strings.Builder
	b.WriteString("| variable | read by | default | example | accepted values | meaning |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n",
			displayName(v), commandsDoc(v.Commands), cell(defaultDoc(v)), cell(code(v.Example)), cell(v.Kind.Format), cell(v.Doc))
	}
	return b.String()
}

func displayName(v *Var) string {
	if v.Prefix {
		return v.Name + "<key>"
	}
	return v.Name
}

func commandsDoc(commands []string) string {
	q := make([]string, len(commands))
	for i, c := range commands {
		switch c {
		case CLI, Tests, Benchmarks:
			q[i] = c
		default:
			q[i] = "`" + c + "`"
		}
	}
	return strings.Join(q, ", ")
}

func defaultDoc(v *Var) string {
	switch {
	case v.DefaultDoc != "":
		return v.DefaultDoc
	case v.Default != "":
		return code(v.Default)
	}
	return "none"
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// cell escapes what would end a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Help is the "Environment" section of a command's --help: each of vars
// with what it means, its default and an example.
func Help(vars []*Var) string {
	if len(vars) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Environment (docs/configuration.md):")
	for _, v := range vars {
		fmt.Fprintf(&b, "\n  %s\n      %s\n      default: %s; example: %s",
			displayName(v), plain(v.Doc), plain(defaultDoc(v)), v.Example)
	}
	return b.String()
}

// plain drops the Markdown code marks of s.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }
