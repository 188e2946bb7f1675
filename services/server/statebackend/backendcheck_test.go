package statebackend_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/server/statebackend"
)

func TestCheckNoBackend(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files map[string]string
		file  string // the file named in the error; "" for no error
		line  int
		block string
	}{
		{"no terraform block", map[string]string{"main.tf": `resource "terraform_data" "x" {}`}, "", 0, ""},
		{"terraform block without a backend", map[string]string{"versions.tf": `
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}`}, "", 0, ""},
		{"s3 backend", map[string]string{"main.tf": "resource \"x\" \"y\" {}\n", "backend.tf": `
terraform {
  required_version = ">= 1.5"

  backend "s3" {
    bucket = "b"
  }
}`}, "backend.tf", 5, `backend "s3"`},
		{"on one line", map[string]string{"main.tf": `terraform{backend "local"{}}`}, "main.tf", 1, `backend "local"`},
		{"unquoted label", map[string]string{"main.tf": "terraform {\n  backend local {}\n}\n"}, "main.tf", 2, `backend "local"`},
		{"cloud block", map[string]string{"main.tf": "terraform {\n  cloud {\n    organization = \"o\"\n  }\n}\n"}, "main.tf", 2, "cloud"},
		{"second terraform block", map[string]string{"main.tf": "terraform {\n}\n\nterraform {\n  backend \"gcs\" {}\n}\n"}, "main.tf", 5, `backend "gcs"`},
		{"in a line comment", map[string]string{"main.tf": "terraform {\n  # backend \"s3\" {}\n  // backend \"s3\" {}\n}\n"}, "", 0, ""},
		{"in a block comment", map[string]string{"main.tf": "terraform {\n  /* backend \"s3\" {\n  } */\n}\n"}, "", 0, ""},
		{"in a heredoc", map[string]string{"main.tf": "locals {\n  doc = <<-EOT\n    terraform {\n      backend \"s3\" {}\n    }\n  EOT\n}\n"}, "", 0, ""},
		{"in a string with braces", map[string]string{"main.tf": "locals {\n  s = \"terraform { backend \\\"s3\\\" { } }\"\n  t = \"${ {a = 1} }\"\n}\nterraform {\n}\n"}, "", 0, ""},
		{"after an interpolation with braces", map[string]string{"main.tf": "locals {\n  t = \"${ {a = \"}\"} }\"\n}\nterraform {\n  backend \"s3\" {}\n}\n"}, "main.tf", 5, `backend "s3"`},
		{"a nested block named backend", map[string]string{"main.tf": "resource \"x\" \"y\" {\n  backend {\n  }\n}\nterraform {\n  experiments = []\n}\n"}, "", 0, ""},
		{"an attribute named backend", map[string]string{"main.tf": "terraform {\n  backend = {}\n}\n"}, "", 0, ""},
		{"backend in JSON", map[string]string{"main.tf.json": `{"terraform": {"backend": {"s3": {"bucket": "b"}}}}`}, "main.tf.json", 0, `backend "s3"`},
		{"cloud in a JSON list", map[string]string{"main.tf.json": `{"terraform": [{"required_version": ">= 1"}, {"cloud": {}}]}`}, "main.tf.json", 0, "cloud"},
		{"JSON without a backend", map[string]string{"main.tf.json": `{"terraform": {"required_version": ">= 1"}}`}, "", 0, ""},
		{"editor backups are ignored", map[string]string{"main.tf~": `terraform { backend "s3" {} }`, ".hidden.tf": `terraform { backend "s3" {} }`, "#x.tf#": `terraform { backend "s3" {} }`}, "", 0, ""},
		{"other files are ignored", map[string]string{"README.md": `terraform { backend "s3" {} }`, "x.tfvars": `terraform { backend "s3" {} }`}, "", 0, ""},
		{"an override file counts", map[string]string{"main.tf": "", "my_override.tf": `terraform { backend "s3" {} }`}, "my_override.tf", 1, `backend "s3"`},
		{"Gantry's own override does not", map[string]string{statebackend.OverrideFileName: string(statebackend.OverrideFile("http://h", "stk_1", statebackend.Credentials{}))}, "", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := statebackend.CheckNoBackend(dir)
			if tc.file == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var be *statebackend.BackendDeclaredError
			if !errors.As(err, &be) || !errors.Is(err, statebackend.ErrBackendDeclared) {
				t.Fatalf("error %v, want a BackendDeclaredError", err)
			}
			if be.File != tc.file || be.Line != tc.line || be.Block != tc.block {
				t.Fatalf("found %+v, want %s:%d %s", be, tc.file, tc.line, tc.block)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.file) || !strings.Contains(msg, "remove the block") {
				t.Fatalf("message %q does not name the file and say to remove the block", msg)
			}
		})
	}
	if err := statebackend.CheckNoBackend(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("no error for a missing project root")
	}
}

// TestOverrideFileEscapes: the server URL ends up in the address verbatim,
// whatever it contains; terraform parses the file (the terraform tests show
// it working end to end).
func TestOverrideFileEscapes(t *testing.T) {
	t.Parallel()
	got := string(statebackend.OverrideFile(`http://h:1983/x"${y}%{z}\`+"\n/", "stk_1", statebackend.Credentials{Username: "gst_u", Password: "p"}))
	for _, want := range []string{
		`address        = "http://h:1983/x\"$${y}%%{z}\\\n/state/stk_1"`,
		`lock_method    = "LOCK"`,
		`unlock_method  = "UNLOCK"`,
		`username       = "gst_u"`,
		`password       = "p"`,
		`backend "http" {`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("override lacks %s:\n%s", want, got)
		}
	}
	noCreds := string(statebackend.OverrideFile("http://h/", "stk_1", statebackend.Credentials{}))
	if strings.Contains(noCreds, "username") || strings.Contains(noCreds, "password") || !strings.Contains(noCreds, `"http://h/state/stk_1"`) {
		t.Errorf("override without credentials:\n%s", noCreds)
	}
}
