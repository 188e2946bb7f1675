package domain

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CheckOrigin requires what every command carries: who caused it and when.
// The domain never reads a clock, so a zero time is a caller's bug, not "now".
func (p *Problems) CheckOrigin(actor string, at time.Time) {
	if strings.TrimSpace(actor) == "" {
		p.Add("actor", "must not be empty")
	}
	if at.IsZero() {
		p.Add("at", "must be set")
	}
}

// CheckText validates a free-text field: valid UTF-8, no control characters
// (they break logs and terminals), at most maxLen runes, and non-blank when
// required.
func (p *Problems) CheckText(field, value string, maxLen int, required bool) {
	switch {
	case required && strings.TrimSpace(value) == "":
		p.Add(field, "must not be empty")
	case !utf8.ValidString(value):
		p.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(value) > maxLen:
		p.Addf(field, "must be at most %d characters", maxLen)
	case strings.ContainsFunc(value, isControlExceptNewline):
		p.Add(field, "must not contain control characters")
	}
}

func isControlExceptNewline(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }

// MaxLabelLength bounds one label; labels are short tags, not descriptions.
const MaxLabelLength = 100

// MaxLabels bounds a list of labels: every read of a stack or pool carries
// them all.
const MaxLabels = 50

// NormalizeLabels validates labels and returns them sorted without
// duplicates (nil when empty), so that equal label sets compare equal and
// events do not depend on the order a user typed them in.
func (p *Problems) NormalizeLabels(field string, labels []string) []string {
	if len(labels) == 0 {
		return nil
	}
	if len(labels) > MaxLabels {
		p.Addf(field, "at most %d labels, got %d", MaxLabels, len(labels))
		return nil
	}
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		switch {
		case strings.TrimSpace(l) == "":
			p.Add(field, "labels must not be empty")
			continue
		case l != strings.TrimSpace(l):
			p.Addf(field, "label %q has leading or trailing spaces", l)
			continue
		case !utf8.ValidString(l) || strings.ContainsFunc(l, unicode.IsControl):
			p.Addf(field, "label %q contains invalid characters", l)
			continue
		case utf8.RuneCountInString(l) > MaxLabelLength:
			p.Addf(field, "label %q is longer than %d characters", l, MaxLabelLength)
			continue
		}
		out = append(out, l)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}
