package tfbackend

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
)

// StatePath is where the server serves a stack's Terraform state, relative
// to its base URL. The server's state handler serves the same layout
// (statebackend.PathPrefix + <stack id>); a test there holds the two equal.
func StatePath(stackID string) string { return "/state/" + url.PathEscape(stackID) }

// Credentials are the username and password terraform's http backend sends
// (statebackend.Credentials minted by the server).
type Credentials struct {
	Username string
	Password string
}

// String describes the credentials without the password.
func (c Credentials) String() string { return "state credentials " + c.Username }

// GoString is String, so %#v does not print the password either.
func (c Credentials) GoString() string { return c.String() }

// OverrideFileName is the file a worker writes into the project root.
// Terraform merges files named *_override.tf over the rest of the
// configuration.
const OverrideFileName = "gantry_backend_override.tf"

// OverrideFile returns the contents of OverrideFileName: a backend "http"
// block pointing terraform at the stack's state on serverURL (the server's
// base URL, as workers reach it), with the username and password of creds.
//
// An empty serverURL leaves the addresses out: give them through the
// environment (AddressVariables), so that a saved plan, which records the
// backend's settings, can be applied by a worker that reaches the server
// at another address (a Docker worker reaches it through a per-run proxy).
//
// Pass the zero Credentials to leave them out, and give them to terraform
// through the environment instead (TF_HTTP_USERNAME, TF_HTTP_PASSWORD).
// Workers should: terraform records the backend settings, credentials
// included, in .terraform/terraform.tfstate and in every saved plan, so
// credentials written into the file are the ones a saved plan is applied
// with — the planning phase's, which stop working when the run starts
// applying — and new credentials in the file need a
// `terraform init -reconfigure`. Settings from the environment are not
// recorded.
//
// With credentials the file holds a password: write it with mode 0600 and
// never log it.
func OverrideFile(serverURL, stackID string, creds Credentials) []byte {
	address := strings.TrimRight(serverURL, "/") + StatePath(stackID)
	var b bytes.Buffer
	b.WriteString("# Written by Gantry for one run phase: Gantry manages this stack's Terraform state.\n")
	b.WriteString("# Do not commit this file.\n")
	b.WriteString("terraform {\n  backend \"http\" {\n")
	var settings [][2]string
	if serverURL != "" {
		settings = append(settings, [2]string{"address       ", address}, [2]string{"lock_address  ", address}, [2]string{"unlock_address", address})
	}
	settings = append(settings, [2]string{"lock_method   ", "LOCK"}, [2]string{"unlock_method ", "UNLOCK"})
	if creds.Username != "" {
		settings = append(settings, [2]string{"username      ", creds.Username}, [2]string{"password      ", creds.Password})
	}
	for _, kv := range settings {
		fmt.Fprintf(&b, "    %s = %s\n", kv[0], hclString(kv[1]))
	}
	b.WriteString("  }\n}\n")
	return b.Bytes()
}

// hclString quotes s as an HCL string literal whose value is exactly s: no
// template sequence in s is interpreted.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, c)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c) // "$${" is a literal "${", "%%{" a literal "%{"
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// AddressVariables are the environment variables that give terraform's
// http backend the stack's state addresses on serverURL, for an override
// written without them.
func AddressVariables(serverURL, stackID string) map[string]string {
	address := strings.TrimRight(serverURL, "/") + StatePath(stackID)
	return map[string]string{"TF_HTTP_ADDRESS": address, "TF_HTTP_LOCK_ADDRESS": address, "TF_HTTP_UNLOCK_ADDRESS": address}
}

// Retries of terraform's http backend (its retry_max, retry_wait_min and
// retry_wait_max settings): a state request that fails for want of the
// server (a restart, an outage of its database) is tried again for about
// three minutes, backing off up to 30 s, instead of three times in 1.2 s.
// Beyond that terraform writes errored.tfstate, which the worker stores
// itself.
const (
	RetryMax     = 10
	RetryWaitMin = 1  // seconds
	RetryWaitMax = 30 // seconds
)

// RetryVariables are the environment variables that give terraform's http
// backend the retries of RetryMax, RetryWaitMin and RetryWaitMax.
func RetryVariables() map[string]string {
	return map[string]string{
		"TF_HTTP_RETRY_MAX":      fmt.Sprint(RetryMax),
		"TF_HTTP_RETRY_WAIT_MIN": fmt.Sprint(RetryWaitMin),
		"TF_HTTP_RETRY_WAIT_MAX": fmt.Sprint(RetryWaitMax),
	}
}
