package domain

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		var ve *ValidationError
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if errors.As(err, &ve) {
			out = append(out, ve.Field)
		}
	}
	walk(err)
	return out
}

func TestProblems(t *testing.T) {
	var p Problems
	if p.Err() != nil {
		t.Fatal("no problems must be a nil error")
	}
	p.Add("name", "must not be empty")
	err := p.Err()
	var ve *ValidationError
	if !errors.As(err, &ve) || *ve != (ValidationError{"name", "must not be empty"}) || err.Error() != "name: must not be empty" {
		t.Fatalf("single problem: %v", err)
	}
	p.Addf("size", "must be at most %d", 3)
	p.Check(nil)
	p.Check(errors.New("other"))
	err = p.Err()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "size: must be at most 3") || !strings.Contains(err.Error(), "other") {
		t.Errorf("joined problems: %v", err)
	}
	if got := fields(err); !reflect.DeepEqual(got, []string{"name", "size"}) {
		t.Errorf("fields %v", got)
	}
	if errors.Is(errors.New("x"), ErrInvalid) || errors.Is(&ValidationError{}, ErrNotFound) {
		t.Error("ErrInvalid matches unrelated errors")
	}
}

func TestCheckOrigin(t *testing.T) {
	var p Problems
	p.CheckOrigin("user:a", time.Unix(1, 0))
	if p.Err() != nil {
		t.Errorf("valid origin refused: %v", p.Err())
	}
	p.CheckOrigin(" ", time.Time{})
	if got := fields(p.Err()); !reflect.DeepEqual(got, []string{"actor", "at"}) {
		t.Errorf("fields %v", got)
	}
}

func TestCheckText(t *testing.T) {
	cases := []struct {
		value    string
		required bool
		ok       bool
	}{
		{"", false, true},
		{"", true, false},
		{"  ", true, false},
		{"a\nb\tc", true, true},
		{"héllo", true, true},
		{"12345", true, true},
		{"123456", true, false},
		{"a\x00", false, false},
		{"a\x1b[31m", false, false},
		{"\xff", false, false},
	}
	for _, tc := range cases {
		var p Problems
		p.CheckText("f", tc.value, 5, tc.required)
		if (p.Err() == nil) != tc.ok {
			t.Errorf("%q (required %v): err %v, want ok %v", tc.value, tc.required, p.Err(), tc.ok)
		}
	}
}

func TestNormalizeLabels(t *testing.T) {
	var p Problems
	if got := p.NormalizeLabels("labels", []string{"b", "a:x", "b", "a:x"}); !reflect.DeepEqual(got, []string{"a:x", "b"}) || p.Err() != nil {
		t.Errorf("got %v, %v", got, p.Err())
	}
	if got := p.NormalizeLabels("labels", []string{}); got != nil {
		t.Errorf("empty labels normalize to %#v, want nil", got)
	}
	var many []string
	for i := range MaxLabels + 1 {
		many = append(many, fmt.Sprint("label-", i))
	}
	if got := p.NormalizeLabels("labels", many); got != nil || !reflect.DeepEqual(fields(p.Err()), []string{"labels"}) {
		t.Errorf("%d labels: %v, %v", len(many), got, p.Err())
	}
	p = Problems{}
	for _, bad := range []string{"", " a", "a ", "a\x00", strings.Repeat("x", MaxLabelLength+1)} {
		var p Problems
		p.NormalizeLabels("labels", []string{"ok", bad})
		if got := fields(p.Err()); !reflect.DeepEqual(got, []string{"labels"}) {
			t.Errorf("%q: fields %v", bad, got)
		}
	}
}

type shape interface{ Area() int }

type square struct{ side int }

func (s square) Area() int { return s.side * s.side }

type circle struct{}

func (*circle) Area() int { return 3 }

func TestDeref(t *testing.T) {
	if got := Deref[shape](&square{2}); got != (square{2}) {
		t.Errorf("pointer: got %#v", got)
	}
	if got := Deref[shape](square{3}); got != (square{3}) {
		t.Errorf("value: got %#v", got)
	}
	var nilSquare *square
	if got := Deref[shape](nilSquare); got != shape(nilSquare) {
		t.Errorf("nil pointer: got %#v", got)
	}
	// circle only implements shape through its pointer: keep the pointer.
	c := &circle{}
	if got := Deref[shape](c); got != shape(c) {
		t.Errorf("pointer-only implementation: got %#v", got)
	}
	if got := Deref[shape](nil); got != nil {
		t.Errorf("nil interface: got %#v", got)
	}
}
