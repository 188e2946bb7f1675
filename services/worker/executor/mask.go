package executor

import (
	"bytes"
	"slices"
	"strings"
	"sync"
)

// Masked is what a secret value becomes in logs.
const Masked = "***"

// masker replaces secret values in log lines. It works on complete lines,
// so that a secret written in several pieces is still found. Every byte
// that belongs to an occurrence of a secret is hidden, and each run of
// hidden bytes becomes one Masked: overlapping secrets leave no fragment.
// A multi-line secret (a PEM key) can never be whole inside one line: each of
// its lines is a secret of its own.
type masker struct {
	mu      sync.RWMutex
	secrets []string // replaced, never modified, by add
}

func newMasker() *masker { return &masker{} }

// add makes values secret from now on. Empty values are ignored: masking ""
// would mean nothing.
func (m *masker) add(values ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := slices.Clone(m.secrets)
	put := func(s string) {
		if s != "" && !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	for _, v := range values {
		if !strings.ContainsAny(v, "\r\n") {
			put(v)
			continue
		}
		for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if strings.TrimSpace(line) != "" {
				put(line)
			}
		}
	}
	m.secrets = list
}

// list returns the current secrets; the slice is never modified.
func (m *masker) list() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.secrets
}

// mask returns line with every secret hidden.
func (m *masker) mask(line string) string {
	var spans [][2]int
	for _, s := range m.list() {
		for off := 0; off < len(line); {
			i := strings.Index(line[off:], s)
			if i < 0 {
				break
			}
			spans = append(spans, [2]int{off + i, off + i + len(s)})
			off += i + 1
		}
	}
	if len(spans) == 0 {
		return line
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var b strings.Builder
	b.Grow(len(line))
	done := 0 // line[:done] is written
	for i := 0; i < len(spans); {
		start, end := spans[i][0], spans[i][1]
		for i++; i < len(spans) && spans[i][0] <= end; i++ {
			end = max(end, spans[i][1])
		}
		b.WriteString(line[done:start])
		b.WriteString(Masked)
		done = end
	}
	b.WriteString(line[done:])
	return b.String()
}

// cut returns where an over-long line without a newline may be split so that
// no secret is cut in two: at least want bytes stay before the cut unless a
// secret straddles it, in which case the cut moves to the secret's start.
// The caller keeps buf[cut:] for the next piece; the second return is false
// when no such cut exists (the caller then waits for more data).
func (m *masker) cut(buf []byte, want int) (int, bool) {
	secrets := m.list()
	if want <= 0 || want > len(buf) {
		return 0, false
	}
	cut := want
	for moved := true; moved; {
		moved = false
		for _, s := range secrets {
			if start := straddles(buf, []byte(s), cut); start >= 0 {
				cut, moved = start, true
			}
		}
		if cut == 0 {
			return 0, false
		}
	}
	return cut, true
}

// straddles returns the start of an occurrence of s in buf that begins before
// cut and ends after it, or -1. An occurrence may also run past the end of
// buf: then its prefix at the end of buf is what straddles the cut.
func straddles(buf, s []byte, cut int) int {
	from := max(0, cut-len(s)+1)
	for i := from; i < cut; i++ {
		end := min(len(buf), i+len(s))
		if end <= cut {
			continue
		}
		if bytes.Equal(buf[i:end], s[:end-i]) {
			return i
		}
	}
	return -1
}
