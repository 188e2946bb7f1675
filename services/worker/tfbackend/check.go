package tfbackend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
)

// ErrBackendDeclared is matched by every *BackendDeclaredError.
var ErrBackendDeclared = errors.New("the code declares its own backend")

// BackendDeclaredError says the stack's code declares a backend (or a
// Terraform Cloud block), which would take the state away from Gantry.
type BackendDeclaredError struct {
	File  string // path relative to the project root
	Line  int    // 0 when unknown (JSON files)
	Block string // `backend "s3"` or `cloud`
}

// Error implements error.
func (e *BackendDeclaredError) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	return fmt.Sprintf("%s declares a %s block in terraform {}: remove the block from %s. "+
		"Gantry manages this stack's state and configures the backend of every run itself", where, e.Block, e.File)
}

// Is makes errors.Is(err, ErrBackendDeclared) true.
func (e *BackendDeclaredError) Is(target error) bool { return target == ErrBackendDeclared }

// CheckNoBackend fails with a *BackendDeclaredError when a configuration file
// of the project root (*.tf, *.tf.json; not our own override) declares a
// backend or cloud block inside a terraform block. Only the project root is
// read, as terraform loads only its files for the root module.
//
// A backend merely mentioned in a comment, a string or a heredoc does not
// count. A *.tf file that does not parse is still searched, token by token,
// so that a backend in it is named; a *.tf.json file that does not parse is
// left to terraform, which reports its syntax errors at init.
func CheckNoBackend(projectRoot string) error {
	entries, err := os.ReadDir(projectRoot)
	if err != nil {
		return fmt.Errorf("check for a backend block: %w", err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || ignoredConfigFile(name) || name == OverrideFileName {
			continue
		}
		if strings.HasSuffix(name, ".tf") || strings.HasSuffix(name, ".tf.json") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(projectRoot, name))
		if err != nil {
			return fmt.Errorf("check for a backend block: %w", err)
		}
		var found *BackendDeclaredError
		if strings.HasSuffix(name, ".tf.json") {
			found = findBackendJSON(data, name)
		} else {
			found = findBackendHCL(data, name)
		}
		if found != nil {
			found.File = name
			return found
		}
	}
	return nil
}

// ignoredConfigFile mirrors terraform's rule for editor and backup files it
// does not load.
func ignoredConfigFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#")
}

// declared names a backend or cloud block found with its type and labels:
// `backend "s3"`, `cloud`.
func declared(typ string, labels []string, line int) *BackendDeclaredError {
	block := typ
	if typ == "backend" && len(labels) > 0 {
		block = fmt.Sprintf("backend %q", labels[0])
	}
	return &BackendDeclaredError{Line: line, Block: block}
}

// findBackendHCL looks for a backend or cloud block directly inside a
// top-level terraform block of a file in HCL native syntax.
func findBackendHCL(data []byte, name string) *BackendDeclaredError {
	file, diags := hclsyntax.ParseConfig(data, name, hcl.InitialPos)
	if diags.HasErrors() {
		// The parser drops what it cannot make sense of, such as a block
		// nested on its parent's line (`terraform { backend "s3" {} }`, which
		// terraform refuses too); searching the tokens still finds it.
		return findBackendTokens(data, name)
	}
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	for _, tf := range body.Blocks {
		if tf.Type != "terraform" {
			continue
		}
		for _, b := range tf.Body.Blocks {
			if b.Type == "backend" || b.Type == "cloud" {
				return declared(b.Type, b.Labels, b.TypeRange.Start.Line)
			}
		}
	}
	return nil
}

// findBackendTokens searches a file in HCL native syntax that does not parse
// for a block header `backend …{` or `cloud {` whose brace opens directly
// inside a top-level terraform block. HCL's own lexer leaves out comments
// and keeps strings and heredocs apart, so nothing in them counts.
func findBackendTokens(data []byte, name string) *BackendDeclaredError {
	toks, _ := hclsyntax.LexConfig(data, name, hcl.InitialPos)
	var (
		stack []string          // the block type of each open brace; "" for other braces
		stmt  []hclsyntax.Token // the tokens of the current statement, for block headers
	)
	for _, t := range toks {
		switch t.Type {
		case hclsyntax.TokenNewline:
			stmt = stmt[:0]
		case hclsyntax.TokenComment:
			// A line comment takes the newline that ends it.
			if strings.HasSuffix(string(t.Bytes), "\n") {
				stmt = stmt[:0]
			}
		case hclsyntax.TokenOBrace:
			typ, labels := blockHeader(stmt)
			if len(stack) == 1 && stack[0] == "terraform" && (typ == "backend" || typ == "cloud") {
				return declared(typ, labels, stmt[0].Range.Start.Line)
			}
			stack = append(stack, typ)
			stmt = stmt[:0]
		case hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			// "${" and "%{" are closed by a "}" of their own.
			stack = append(stack, "")
			stmt = append(stmt, t)
		case hclsyntax.TokenCBrace, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			stmt = stmt[:0]
		default:
			stmt = append(stmt, t)
		}
	}
	return nil
}

// blockHeader returns the type and labels of a block whose header is stmt
// (an identifier followed by identifiers or quoted strings), or "" when stmt
// is not a block header (an attribute's object value, for example).
func blockHeader(stmt []hclsyntax.Token) (string, []string) {
	if len(stmt) == 0 || stmt[0].Type != hclsyntax.TokenIdent {
		return "", nil
	}
	var labels []string
	for i := 1; i < len(stmt); i++ {
		switch {
		case stmt[i].Type == hclsyntax.TokenIdent:
			labels = append(labels, string(stmt[i].Bytes))
		case stmt[i].Type == hclsyntax.TokenOQuote && i+1 < len(stmt) && stmt[i+1].Type == hclsyntax.TokenCQuote:
			labels = append(labels, "")
			i++
		case stmt[i].Type == hclsyntax.TokenOQuote && i+2 < len(stmt) &&
			stmt[i+1].Type == hclsyntax.TokenQuotedLit && stmt[i+2].Type == hclsyntax.TokenCQuote:
			labels = append(labels, string(stmt[i+1].Bytes))
			i += 2
		default:
			return "", nil
		}
	}
	return string(stmt[0].Bytes), labels
}

// backendSchema picks out of a terraform block the blocks that declare a
// backend, as terraform decodes them.
var backendSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "backend", LabelNames: []string{"type"}},
	{Type: "cloud"},
}}

// findBackendJSON looks for a backend or cloud block in the terraform
// block(s) of a JSON configuration file. A file that is not valid JSON is
// left to terraform to report. The line is left out (0), as it always was
// for JSON files.
func findBackendJSON(data []byte, name string) *BackendDeclaredError {
	file, diags := hcljson.Parse(data, name)
	if diags.HasErrors() {
		return nil
	}
	// Diagnostics of the content are terraform's to report: what decodes
	// is searched.
	root, _, _ := file.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "terraform"}}})
	for _, tf := range root.Blocks {
		content, _, _ := tf.Body.PartialContent(backendSchema)
		if len(content.Blocks) > 0 {
			b := content.Blocks[0]
			return declared(b.Type, b.Labels, 0)
		}
	}
	return nil
}
