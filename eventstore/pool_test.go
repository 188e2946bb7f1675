package eventstore

import "testing"

func TestSetsPoolSize(t *testing.T) {
	for url, want := range map[string]bool{
		"postgres://u@h/db":                  false,
		"postgres://u@h/db?pool_max_conns=5": true,
		"postgres://u@h/db?sslmode=disable":  false,
		"host=h dbname=db pool_max_conns=8":  true,
		"host=h dbname=db sslmode=disable":   false,
	} {
		if got := setsPoolSize(url); got != want {
			t.Errorf("setsPoolSize(%q) = %v, want %v", url, got, want)
		}
	}
}
