package main

import (
	"bytes"
	"os"
	"testing"
)

func TestStripANSI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"\x1b[1mPlan:\x1b[0m 1 to add, 0 to change, 0 to destroy.", "Plan: 1 to add, 0 to change, 0 to destroy."},
		{"\x1b[32m+\x1b[0m\x1b[0m resource", "+ resource"},
		{"\x1b[38;5;196mred\x1b[39m", "red"},
		{"\x1b]0;title\x07after", "after"},
		{"\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"keep\x1bcgoing", "keepgoing"},
		{"cut off \x1b[1", "cut off "},
		{"cut off \x1b", "cut off "},
		{"ünïcode \x1b[1mstays\x1b[0m", "ünïcode stays"},
	}
	for _, tt := range tests {
		if got := stripANSI(tt.in); got != tt.want {
			t.Errorf("stripANSI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestColorOnlyToATerminal(t *testing.T) {
	if colorAllowed(&bytes.Buffer{}, false) {
		t.Error("a buffer gets colour")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if colorAllowed(w, false) {
		t.Error("a pipe gets colour")
	}
	// Whatever stdout is, NO_COLOR wins.
	if colorAllowed(os.Stdout, true) {
		t.Error("colour with NO_COLOR set")
	}
	if got := paint(false, "31", "x"); got != "x" {
		t.Errorf("paint without colour = %q", got)
	}
	if got := paint(true, "31", "x"); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("paint = %q", got)
	}
}
