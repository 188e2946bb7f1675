package statebackend

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/state"
)

// ErrInvalidState is matched by every *InvalidStateError.
var ErrInvalidState = errors.New("not a Terraform state file")

// InvalidStateError says bytes are not Terraform state JSON. It also matches
// domain.ErrInvalid, so the API reports it as the caller's mistake.
type InvalidStateError struct {
	Problem string
}

// Error implements error.
func (e *InvalidStateError) Error() string { return "not a Terraform state file: " + e.Problem }

// Is makes errors.Is true for ErrInvalidState and domain.ErrInvalid.
func (e *InvalidStateError) Is(target error) bool {
	return target == ErrInvalidState || target == domain.ErrInvalid
}

// ErrTooLarge is matched by every *TooLargeError.
var ErrTooLarge = errors.New("state file too large")

// TooLargeError says a state file (or a lock info) exceeds its limit. It
// also matches domain.ErrInvalid.
type TooLargeError struct {
	What      string // "state file" or "lock info"
	Size, Max int64  // Size is -1 when only "more than Max" is known
}

// Error implements error.
func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("%s too large: more than the limit of %s", e.What, byteSize(e.Max))
	}
	return fmt.Sprintf("%s too large: %s is more than the limit of %s", e.What, byteSize(e.Size), byteSize(e.Max))
}

// Is makes errors.Is true for ErrTooLarge and domain.ErrInvalid.
func (e *TooLargeError) Is(target error) bool {
	return target == ErrTooLarge || target == domain.ErrInvalid
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// stateFile is a parsed, digested state file.
type stateFile struct {
	data    []byte
	serial  uint64
	lineage string
	md5     [md5.Size]byte
	sha256  [sha256.Size]byte
}

// parseState digests data and checks that it is one Terraform state JSON
// object with an integer format version (3 and 4 exist; later ones are
// accepted), a non-negative integer serial and a lineage. The returned file
// always carries the digests, also with an error, so that a caller can check
// a Content-MD5 first.
func parseState(data []byte) (*stateFile, error) {
	f := &stateFile{data: data}
	// Digesting and checking the JSON take milliseconds per MiB each: do
	// both at once.
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.md5, f.sha256 = md5.Sum(data), sha256.Sum256(data)
	}()
	var err error
	f.serial, f.lineage, err = parseHeader(data)
	<-done
	return f, err
}

// parseHeader validates data as JSON and reads the state header from it.
func parseHeader(data []byte) (serial uint64, lineage string, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return 0, "", &InvalidStateError{Problem: "the body is empty"}
	}
	// json.Valid checks the whole document once; the header is then read
	// from the top level alone. (Unmarshal would scan the document twice.)
	if !json.Valid(data) {
		var v json.RawMessage
		err := json.Unmarshal(data, &v) // fails in its validity check, naming the problem and its offset
		return 0, "", &InvalidStateError{Problem: fmt.Sprintf("not valid JSON: %v", err)}
	}
	fields, err := topLevel(data, "version", "serial", "lineage")
	if err != nil {
		return 0, "", err
	}
	var version int64
	for _, f := range []struct {
		name string
		into any
	}{{"version", &version}, {"serial", &serial}, {"lineage", &lineage}} {
		raw, ok := fields[f.name]
		if !ok {
			return 0, "", &InvalidStateError{Problem: fmt.Sprintf("no %q field", f.name)}
		}
		if err := json.Unmarshal(raw, f.into); err != nil {
			return 0, "", &InvalidStateError{Problem: fmt.Sprintf("field %q: %s is not a %s", f.name, abbreviate(raw), map[string]string{
				"version": "format version number", "serial": "non-negative integer", "lineage": "string"}[f.name])}
		}
	}
	switch {
	case version < 1:
		return 0, "", &InvalidStateError{Problem: fmt.Sprintf(`"version" %d is not a state format version`, version)}
	case lineage == "":
		return 0, "", &InvalidStateError{Problem: `"lineage" is empty`}
	case len(lineage) > state.MaxLineageLength:
		return 0, "", &InvalidStateError{Problem: fmt.Sprintf(`"lineage" is longer than %d bytes`, state.MaxLineageLength)}
	}
	return serial, lineage, nil
}

func abbreviate(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	return string(raw)
}

// topLevel returns the raw values of the named members of the JSON object
// in data, which must be valid JSON. Like encoding/json, a later duplicate
// member wins.
func topLevel(data []byte, names ...string) (map[string][]byte, error) {
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return nil, &InvalidStateError{Problem: "want a JSON object with version, serial and lineage, got a JSON " + kindOf(data[i])}
	}
	out := map[string][]byte{}
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		keyEnd := skipValue(data, i)
		var key string
		if err := json.Unmarshal(data[i:keyEnd], &key); err != nil {
			return nil, &InvalidStateError{Problem: "bad member name: " + err.Error()}
		}
		i = skipSpace(data, keyEnd)
		i = skipSpace(data, i+1) // ':'
		end := skipValue(data, i)
		if slices.Contains(names, key) {
			out[key] = data[i:end]
		}
		i = skipSpace(data, end)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return out, nil
}

func kindOf(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value starting at i.
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		// A tight loop: only quotes, escapes and brackets matter.
		depth, inString := 0, false
		for ; i < len(data); i++ {
			c := data[i]
			if inString {
				switch c {
				case '\\':
					i++
				case '"':
					inString = false
				}
				continue
			}
			switch c {
			case '"':
				inString = true
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(data) && !strings.ContainsRune(",}] \t\n\r", rune(data[i])) {
		i++
	}
	return i
}

// skipString returns the index just past the string whose quote is at i.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// content describes f stored under key, for the state aggregate.
func (f *stateFile) content(key string) state.Content {
	return state.Content{
		Serial: f.serial, Lineage: f.lineage, MD5: hex.EncodeToString(f.md5[:]), SHA256: hex.EncodeToString(f.sha256[:]),
		Size: int64(len(f.data)), BlobKey: key,
	}
}

// blobKey is where version n of a stack's state is stored. The digest in the
// key makes a key name one content only: two requests racing for the same
// version number never overwrite each other's bytes.
func blobKey(stackID string, version int, sha256Hex string) string {
	return fmt.Sprintf("state/%s/%d-%s", stackID, version, sha256Hex)
}

// writeBlob stores a state file, encrypted with the server's keeper. Every
// read verifies the SHA-256 the version's event records.
func (s *Service) writeBlob(ctx context.Context, b *pendingBlob) error {
	if err := s.blobs.WriteEncrypted(ctx, b.key, b.data, "application/json"); err != nil {
		return fmt.Errorf("store state blob: %w", err)
	}
	return nil
}

// ErrCorrupt is returned when a stored version's bytes do not match the
// checksum its event recorded.
var ErrCorrupt = errors.New("stored state does not match its checksum")

// readVersion returns the bytes of v, verified against its size and SHA-256.
func (s *Service) readVersion(ctx context.Context, v state.Version) ([]byte, error) {
	data, err := s.blobs.ReadEncrypted(ctx, v.BlobKey)
	if err != nil {
		return nil, fmt.Errorf("read state version %d (%s): %w", v.Version, v.BlobKey, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != v.Size || hex.EncodeToString(sum[:]) != v.SHA256 {
		return nil, fmt.Errorf("state version %d (%s): %d bytes with SHA-256 %x, want %d bytes with %s: %w",
			v.Version, v.BlobKey, len(data), sum, v.Size, v.SHA256, ErrCorrupt)
	}
	return data, nil
}
