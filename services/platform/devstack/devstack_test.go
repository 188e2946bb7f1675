package devstack_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/platform/devstack"
	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }

func TestExternalURLsReplaceEmbeddedParts(t *testing.T) {
	ctx := context.Background()
	n := testenv.NATS(t)
	dataDir := t.TempDir()
	s, err := devstack.Start(ctx, devstack.Config{
		DataDir:     dataDir,
		DatabaseURL: testenv.Postgres(t),
		NATSURL:     n.URL(),
		BlobURL:     "mem://",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	if err := s.Pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if s.NATSURL != n.URL() || s.BlobURL != "mem://" {
		t.Fatalf("urls: nats %s, blob %s", s.NATSURL, s.BlobURL)
	}
	for _, c := range s.Components {
		if !strings.HasSuffix(c.Where, "(external)") {
			t.Errorf("%s: %s, want external", c.Name, c.Where)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dataDir, "postgres", "*")); len(matches) != 0 {
		t.Fatalf("a private cluster was created although GANTRY_DATABASE_URL is set: %v", matches)
	}
}

func TestBadBlobURLFailsAndStopsWhatStarted(t *testing.T) {
	ctx := context.Background()
	_, err := devstack.Start(ctx, devstack.Config{
		DataDir:     t.TempDir(),
		DatabaseURL: testenv.Postgres(t),
		NATSListen:  "127.0.0.1:0",
		BlobURL:     "nosuchscheme://bucket",
	})
	if err == nil || !strings.Contains(err.Error(), "bucket") {
		t.Fatalf("err = %v, want an error about the bucket", err)
	}
}
