// Package name is the name reservation aggregate. Stack and worker pool
// names are unique, case-insensitively, and the event store itself enforces
// it: each name has a reservation stream whose key is derived from the
// lower-cased name (Key), and a create appends NameReserved to it in the same
// transaction as the new aggregate's first event, at the version it saw. Two
// creates of one name then conflict on that stream, and the retry finds the
// name taken. A delete or a rename appends NameReleased, which frees it.
//
// The reservation stream is also how names resolve to ids with no read model
// in between: it is always current.
package name

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// State is a name reservation as its events made it. The zero value is a
// name that was never reserved.
type State struct {
	owner string // "" when free
}

// Owner is the id of the stack or pool the name belongs to, "" when free.
func (s State) Owner() string { return s.owner }

// Key is what identifies a name's reservation, whatever its case: the hex
// SHA-256 of the lower-cased name. Stream ids are built from it, so it must
// never change.
func Key(name string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(name)))
	return hex.EncodeToString(sum[:])
}
