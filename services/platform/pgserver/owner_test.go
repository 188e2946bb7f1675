package pgserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartNamesUnreachableParentWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another account")
	}
	t.Parallel()
	// t.TempDir's parent is 0700: postgres could not reach a data dir inside it.
	parent := t.TempDir()
	hidden := filepath.Dir(parent)
	_, err := Start(context.Background(), Config{DataDir: filepath.Join(parent, "data")})
	if err == nil {
		t.Fatal("Start succeeded below a directory postgres cannot traverse")
	}
	if !strings.Contains(err.Error(), "directory "+hidden+" ") || !strings.Contains(err.Error(), "not traversable") {
		t.Fatalf("error does not name %s: %v", hidden, err)
	}
}
