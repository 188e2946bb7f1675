package tfbackend_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/services/worker/tfbackend"
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
		{"Gantry's own override does not", map[string]string{tfbackend.OverrideFileName: string(tfbackend.OverrideFile("http://h", "stk_1", tfbackend.Credentials{}))}, "", 0, ""},

		// Parsed by hclsyntax: comments, strings and heredocs that mention a backend.
		{"comments with braces before the block", map[string]string{"main.tf": "# }\n/* { */\nterraform {\n  # backend \"x\" {\n  backend \"s3\" {\n  }\n}\n"}, "main.tf", 5, `backend "s3"`},
		{"a heredoc with interpolations and braces", map[string]string{"main.tf": "locals {\n  doc = <<EOT\n${ {a = \"}\"} }\n%{ if true }}{%{ endif }\nterraform {\n  backend \"s3\" {}\n}\nEOT\n}\n"}, "", 0, ""},
		{"a template directive with braces in a string", map[string]string{"main.tf": "locals {\n  s = \"%{ for k, v in {backend = 1} }${k}{%{ endfor }\"\n}\nterraform {\n  required_version = \">= 1.5\"\n}\n"}, "", 0, ""},
		{"a required_providers-only terraform block", map[string]string{"versions.tf": "terraform {\n  required_providers {\n    backend = {\n      source = \"example/backend\"\n    }\n  }\n}\n"}, "", 0, ""},
		{"a backend nested deeper than terraform", map[string]string{"main.tf": "terraform {\n  required_providers {\n  }\n  provider_meta \"x\" {\n    backend \"s3\" {}\n  }\n}\n"}, "", 0, ""},
		{"a cloud block in a block that is not terraform", map[string]string{"main.tf": "module \"m\" {\n  source = \"./m\"\n  cloud {\n  }\n}\n"}, "", 0, ""},
		{"cloud in a third terraform block", map[string]string{"a.tf": "terraform {\n  required_version = \">= 1\"\n}\n", "b.tf": "terraform {\n  required_providers {\n  }\n}\n\nterraform {\n  experiments = []\n}\nterraform {\n\n  cloud {\n  }\n}\n"}, "b.tf", 11, "cloud"},
		{"the first file in name order", map[string]string{"b.tf": "terraform {\n  backend \"gcs\" {}\n}\n", "a.tf": "\nterraform {\n  cloud {}\n}\n"}, "a.tf", 3, "cloud"},
		{"only the project root is read", map[string]string{"main.tf": "", "modules/net/main.tf": "terraform {\n  backend \"s3\" {}\n}\n", "sub.tf/x.tf": "terraform {\n  backend \"s3\" {}\n}\n"}, "", 0, ""},

		// Files that do not parse: HCL is still searched, JSON is left to terraform.
		{"a syntax error elsewhere in the file", map[string]string{"main.tf": "locals {\n  a = = 1\n}\nterraform {\n  # a comment\n  backend \"s3\" {\n  }\n}\n"}, "main.tf", 6, `backend "s3"`},
		{"a syntax error and a backend only in a heredoc", map[string]string{"main.tf": "locals {\n  a = = 1\n  doc = <<-EOT\n    terraform {\n      backend \"s3\" {}\n    }\n  EOT\n}\n"}, "", 0, ""},
		{"a syntax error and a backend only in comments", map[string]string{"main.tf": "terraform { # backend \"s3\" {\n  required_version = = 1 // cloud {\n}\n"}, "", 0, ""},
		{"invalid JSON", map[string]string{"main.tf.json": `{"terraform": {"backend": {"s3": {}}}`}, "", 0, ""},

		// JSON, parsed by hcl's JSON parser.
		{"backend in a JSON list of terraform blocks", map[string]string{"main.tf.json": `{"terraform": [{"required_version": ">= 1"}, {"backend": {"gcs": {"bucket": "b"}}}]}`}, "main.tf.json", 0, `backend "gcs"`},
		{"JSON strings and comments mentioning a backend", map[string]string{"main.tf.json": `{"//": "terraform {backend \"s3\" {}}", "locals": {"backend": {"s3": {}}}, "terraform": {"//": "no cloud {} here", "required_providers": {"backend": {"source": "example/backend"}}}}`}, "", 0, ""},
		{"a JSON resource named backend", map[string]string{"main.tf.json": `{"resource": {"terraform_data": {"backend": {"input": "cloud"}}}}`}, "", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				path := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := tfbackend.CheckNoBackend(dir)
			if tc.file == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var be *tfbackend.BackendDeclaredError
			if !errors.As(err, &be) || !errors.Is(err, tfbackend.ErrBackendDeclared) {
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
	if err := tfbackend.CheckNoBackend(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("no error for a missing project root")
	}
}
