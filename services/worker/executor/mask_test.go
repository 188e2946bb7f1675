package executor

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gantryhq/gantry/domain/run"
)

func TestMaskerHidesEveryByteOfEverySecret(t *testing.T) {
	for _, tc := range []struct {
		secrets []string
		line    string
		want    string
	}{
		{nil, "nothing secret", "nothing secret"},
		{[]string{"pw"}, "a pw and pw", "a *** and ***"},
		{[]string{"abcd", "cdef"}, "xabcdefx", "x***x"},             // overlapping secrets leave no fragment
		{[]string{"ab", "cd"}, "abcd", "***"},                       // adjacent ones become one mask
		{[]string{"secret", "secret-long"}, "secret-long!", "***!"}, // the longer one wins
		{[]string{"aa"}, "aaaaa", "***"},
		{[]string{""}, "empty secrets mean nothing", "empty secrets mean nothing"},
		{[]string{"-----BEGIN-----\nline1\r\nline2\n"}, "line1 and line2, -----BEGIN-----", "*** and ***, ***"},
		{[]string{"\n \n"}, "blank lines of a secret are not secrets", "blank lines of a secret are not secrets"},
	} {
		m := newMasker()
		m.add(tc.secrets...)
		if got := m.mask(tc.line); got != tc.want {
			t.Errorf("mask(%q) with %q = %q, want %q", tc.line, tc.secrets, got, tc.want)
		}
	}
}

// lines is a Reporter that keeps the lines of one phase.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) PhaseStarted(context.Context, run.Phase, time.Time) error { return nil }
func (l *lines) PhaseFinished(context.Context, PhaseResult) error         { return nil }
func (l *lines) Log(_ run.Phase, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, line)
}

func pumpAll(t *testing.T, m *masker, r io.Reader) []string {
	t.Helper()
	rep := &lines{}
	l := newPhaseLog(run.PhasePlanning, rep, m)
	touched := 0
	pump(r, l, func() { touched++ })
	if touched == 0 {
		t.Error("output did not touch the logs timeout's clock")
	}
	if got, want := string(l.bytes()), strings.Join(rep.got, "\n")+"\n"; got != want {
		t.Errorf("stored %q, streamed %q", got, want)
	}
	return rep.got
}

func TestPumpMasksSecretsSplitAcrossReads(t *testing.T) {
	const text = "first line\r\nthe password is hunter2!\nhunter2\nno newline at the end: hunter2"
	m := newMasker()
	m.add("hunter2")
	want := []string{"first line", "the password is ***!", "***", "no newline at the end: ***"}
	// One byte per read: every secret is split across reads.
	if got := pumpAll(t, m, iotest.OneByteReader(strings.NewReader(text))); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
	// Two reads, split at every position.
	for i := 1; i < len(text); i++ {
		r := io.MultiReader(strings.NewReader(text[:i]), strings.NewReader(text[i:]))
		if got := pumpAll(t, m, r); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("split at %d: lines = %q, want %q", i, got, want)
		}
	}
}

// chunkReader returns its data n bytes per read.
type chunkReader struct {
	data string
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.data == "" {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

func TestPumpCutsLongLinesOutsideSecrets(t *testing.T) {
	const secret = "0123456789-secret"
	m := newMasker()
	m.add(secret)
	for start := maxLine - len(secret) - 2; start <= maxLine+2; start++ {
		line := strings.Repeat("x", start) + secret + strings.Repeat("y", maxLine+100)
		want := strings.Repeat("x", start) + Masked + strings.Repeat("y", maxLine+100)
		got := pumpAll(t, m, &chunkReader{data: line + "\n", n: 4096})
		if len(got) < 2 {
			t.Fatalf("secret at %d: a %d-byte line came out in %d piece(s)", start, len(line), len(got))
		}
		if joined := strings.Join(got, ""); joined != want {
			t.Fatalf("secret at %d: the pieces do not make the masked line (lengths %d, %d)", start, len(joined), len(want))
		}
	}
}

func TestCutNeverSplitsASecret(t *testing.T) {
	m := newMasker()
	m.add("abcdef")
	for _, tc := range []struct {
		buf    string
		want   int
		cut    int
		cutsOK bool
	}{
		{"xxxxabcdefxxxx", 6, 4, true},   // inside a secret: before it
		{"xxxxabcdefxxxx", 4, 4, true},   // at its start
		{"xxxxabcdefxxxx", 10, 10, true}, // after it
		{"xxxxxxxxxabc", 10, 9, true},    // a secret's beginning at the end may go on in the next read
		{"abcdefxxx", 3, 0, false},       // nothing before the secret
	} {
		cut, ok := m.cut([]byte(tc.buf), tc.want)
		if cut != tc.cut || ok != tc.cutsOK {
			t.Errorf("cut(%q, %d) = %d, %v; want %d, %v", tc.buf, tc.want, cut, ok, tc.cut, tc.cutsOK)
		}
	}
}
