package main

import (
	"errors"
	"slices"
	"testing"
)

func TestAllPagesFollowsTokensToTheEnd(t *testing.T) {
	pages := map[string]struct {
		items []int
		next  string
	}{"": {[]int{1, 2}, "a"}, "a": {[]int{3}, "b"}, "b": {nil, "c"}, "c": {[]int{4}, ""}}
	var asked []string
	got, err := allPages(func(token string) ([]int, string, error) {
		asked = append(asked, token)
		p := pages[token]
		return p.items, p.next, nil
	})
	if err != nil || !slices.Equal(got, []int{1, 2, 3, 4}) || !slices.Equal(asked, []string{"", "a", "b", "c"}) {
		t.Fatalf("got %v, asked %v, err %v", got, asked, err)
	}
	boom := errors.New("boom")
	if _, err := allPages(func(string) ([]int, string, error) { return nil, "", boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}
