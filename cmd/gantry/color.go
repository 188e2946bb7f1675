package main

import (
	"io"
	"strings"

	"golang.org/x/term"
)

// colorAllowed reports whether w may receive ANSI escape codes: only a
// terminal does, and none does when NO_COLOR is set (https://no-color.org).
// Pipes and files get plain text.
func colorAllowed(w io.Writer, noColor bool) bool {
	if noColor {
		return false
	}
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// stripANSI removes terminal escape sequences from s: CSI sequences such as
// terraform's colours ("\x1b[1m", "\x1b[32m"), OSC sequences (titles,
// hyperlinks) and the other two-byte escapes.
func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != 0x1b {
			b.WriteByte(s[i])
			i++
			continue
		}
		i = skipEscape(s, i)
	}
	return b.String()
}

// skipEscape returns the index just after the escape sequence that starts at
// s[i] (an ESC), or the end of s if the sequence is cut off.
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameter and intermediate bytes, then one final byte in @–~
		for i++; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']': // OSC: ends with BEL or ST (ESC \)
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	default: // a two-byte escape (ESC c, ESC =, …)
		return i + 1
	}
}

// paint wraps s in the SGR code when colour is on.
func paint(on bool, code, s string) string {
	if !on || code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
