package tfbackend_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/gantryhq/gantry/services/worker/tfbackend"
)

// TestOverrideFileEscapes: the server URL ends up in the address verbatim,
// whatever it contains; terraform parses the file (the terraform tests show
// it working end to end).
func TestOverrideFileEscapes(t *testing.T) {
	t.Parallel()
	got := string(tfbackend.OverrideFile(`http://h:1983/x"${y}%{z}\`+"\n/", "stk_1", tfbackend.Credentials{Username: "gst_u", Password: "p"}))
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
	noCreds := string(tfbackend.OverrideFile("http://h/", "stk_1", tfbackend.Credentials{}))
	if strings.Contains(noCreds, "username") || strings.Contains(noCreds, "password") || !strings.Contains(noCreds, `"http://h/state/stk_1"`) {
		t.Errorf("override without credentials:\n%s", noCreds)
	}
}

// TestOverrideFileParses reads the override back with HCL's own parser: the
// address, whatever the server URL holds, evaluates to exactly the URL of
// the stack's state, and the credentials to exactly themselves.
func TestOverrideFileParses(t *testing.T) {
	t.Parallel()
	for _, serverURL := range []string{
		"http://127.0.0.1:1983",
		"https://gantry.example.com/base/",
		`http://h/x"${y}%{z}$${w}%%{v}\` + "\n\t\x01/",
	} {
		creds := tfbackend.Credentials{Username: "gst_u${x}", Password: `p"\%{y}`}
		src := tfbackend.OverrideFile(serverURL, "stk_1", creds)
		file, diags := hclsyntax.ParseConfig(src, tfbackend.OverrideFileName, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("override for %q does not parse: %v\n%s", serverURL, diags, src)
		}
		blocks := file.Body.(*hclsyntax.Body).Blocks
		if len(blocks) != 1 || blocks[0].Type != "terraform" || len(blocks[0].Body.Blocks) != 1 {
			t.Fatalf("override for %q is not one terraform block with one block:\n%s", serverURL, src)
		}
		backend := blocks[0].Body.Blocks[0]
		if backend.Type != "backend" || len(backend.Labels) != 1 || backend.Labels[0] != "http" {
			t.Fatalf("override for %q: block %s %v, want backend \"http\"", serverURL, backend.Type, backend.Labels)
		}
		address := strings.TrimRight(serverURL, "/") + tfbackend.StatePath("stk_1")
		want := map[string]string{
			"address": address, "lock_address": address, "unlock_address": address,
			"lock_method": "LOCK", "unlock_method": "UNLOCK",
			"username": creds.Username, "password": creds.Password,
		}
		attrs := backend.Body.Attributes
		if len(attrs) != len(want) {
			t.Errorf("override for %q has %d settings, want %d", serverURL, len(attrs), len(want))
		}
		for name, value := range want {
			attr, ok := attrs[name]
			if !ok {
				t.Errorf("override for %q lacks %s", serverURL, name)
				continue
			}
			v, diags := attr.Expr.Value(nil)
			if diags.HasErrors() || !v.Type().Equals(cty.String) || v.AsString() != value {
				t.Errorf("override for %q: %s = %#v (%v), want %q", serverURL, name, v, diags, value)
			}
		}
	}
}

// TestStatePath: stack ids are escaped into one path segment.
func TestStatePath(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{"stk_01ABC": "/state/stk_01ABC", "a/b c": "/state/a%2Fb%20c"} {
		if got := tfbackend.StatePath(id); got != want {
			t.Errorf("StatePath(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestOverrideFileWithoutAddress: with no server URL the addresses are left
// out, for AddressVariables to give.
func TestOverrideFileWithoutAddress(t *testing.T) {
	t.Parallel()
	got := string(tfbackend.OverrideFile("", "stk_1", tfbackend.Credentials{}))
	if strings.Contains(got, "address") || !strings.Contains(got, `lock_method    = "LOCK"`) || !strings.Contains(got, `backend "http" {`) {
		t.Errorf("override without an address:\n%s", got)
	}
	vars := tfbackend.AddressVariables("http://10.0.0.1:4000/", "stk_1")
	for _, name := range []string{"TF_HTTP_ADDRESS", "TF_HTTP_LOCK_ADDRESS", "TF_HTTP_UNLOCK_ADDRESS"} {
		if vars[name] != "http://10.0.0.1:4000/state/stk_1" {
			t.Errorf("%s = %q", name, vars[name])
		}
	}
}
