package ui

import (
	"strconv"
	"strings"
)

// segment is a run of log text with the classes of its ANSI attributes.
// Pages escape the text (html/template, or textContent in app.js).
type segment struct {
	Text  string `json:"t"`
	Class string `json:"c,omitempty"`
}

var ansiColors = [8]string{"black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"}

// ansiSegments splits a log line at its SGR escape sequences (ESC [ … m)
// into segments classed ansi-bold, ansi-underline, ansi-fg-<colour> and
// ansi-bright; every other escape sequence and control character is
// dropped.
func ansiSegments(line string) []segment {
	var out []segment
	var bold, underline, bright bool
	fg := ""
	class := func() string {
		var c []string
		if bold {
			c = append(c, "ansi-bold")
		}
		if underline {
			c = append(c, "ansi-underline")
		}
		if fg != "" {
			c = append(c, "ansi-fg-"+fg)
			if bright {
				c = append(c, "ansi-bright")
			}
		}
		return strings.Join(c, " ")
	}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, segment{Text: text.String(), Class: class()})
			text.Reset()
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		if ch != 0x1b {
			if ch < 0x20 && ch != '\t' || ch == 0x7f {
				continue
			}
			text.WriteByte(ch)
			continue
		}
		if i+1 >= len(line) || line[i+1] != '[' {
			i++ // a two-byte escape
			continue
		}
		j := i + 2
		for j < len(line) && (line[j] < 0x40 || line[j] > 0x7e) {
			j++
		}
		if j >= len(line) {
			break
		}
		if line[j] == 'm' {
			flush()
			params := strings.Split(line[i+2:j], ";")
			for _, p := range params {
				n, err := strconv.Atoi(p)
				if p == "" {
					n, err = 0, nil
				}
				if err != nil {
					continue
				}
				switch {
				case n == 0:
					bold, underline, bright, fg = false, false, false, ""
				case n == 1:
					bold = true
				case n == 4:
					underline = true
				case n == 22:
					bold = false
				case n == 24:
					underline = false
				case n >= 30 && n <= 37:
					fg, bright = ansiColors[n-30], false
				case n == 39:
					fg, bright = "", false
				case n >= 90 && n <= 97:
					fg, bright = ansiColors[n-90], true
				}
			}
		}
		i = j
	}
	flush()
	return out
}
