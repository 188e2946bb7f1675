package statebackend

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
// backend or cloud block inside a terraform block. Comments, strings and
// heredocs are skipped, so a backend only mentioned there does not count.
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
			found = findBackendJSON(data)
		} else {
			found = findBackendHCL(data)
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

// findBackendJSON looks for "backend" or "cloud" in the terraform block(s)
// of a JSON configuration file. A file that is not valid JSON is left to
// terraform to report.
func findBackendJSON(data []byte) *BackendDeclaredError {
	var root map[string]json.RawMessage
	if json.Unmarshal(data, &root) != nil {
		return nil
	}
	raw, ok := root["terraform"]
	if !ok {
		return nil
	}
	var blocks []map[string]json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(raw, &one) != nil {
			return nil
		}
		blocks = append(blocks, one)
	}
	for _, b := range blocks {
		if be, ok := b["backend"]; ok {
			var types map[string]json.RawMessage
			block := "backend"
			if json.Unmarshal(be, &types) == nil {
				for t := range types {
					block = fmt.Sprintf("backend %q", t)
					break
				}
			}
			return &BackendDeclaredError{Block: block}
		}
		if _, ok := b["cloud"]; ok {
			return &BackendDeclaredError{Block: "cloud"}
		}
	}
	return nil
}

// findBackendHCL scans HCL native syntax for a backend or cloud block
// directly inside a top-level terraform block.
func findBackendHCL(data []byte) *BackendDeclaredError {
	toks := tokenize(data)
	var (
		stack []string // the block type of each open brace; "" for other braces
		stmt  []token  // the tokens of the current statement, for block headers
	)
	for _, t := range toks {
		switch t.kind {
		case tokNewline:
			stmt = stmt[:0]
		case tokOpen:
			typ := blockType(stmt)
			if len(stack) == 1 && stack[0] == "terraform" && (typ == "backend" || typ == "cloud") {
				block := typ
				if typ == "backend" && len(stmt) > 1 {
					block = fmt.Sprintf("backend %q", stmt[1].text)
				}
				return &BackendDeclaredError{Line: stmt[0].line, Block: block}
			}
			stack = append(stack, typ)
			stmt = stmt[:0]
		case tokClose:
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

// blockType returns the type of a block whose header is stmt (an
// identifier followed by labels), or "" when stmt is not a block header
// (an attribute's object value, for example).
func blockType(stmt []token) string {
	if len(stmt) == 0 || stmt[0].kind != tokIdent {
		return ""
	}
	for _, t := range stmt[1:] {
		if t.kind != tokIdent && t.kind != tokString {
			return ""
		}
	}
	return stmt[0].text
}
