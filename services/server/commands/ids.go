package commands

import (
	"encoding/hex"
	"fmt"

	"github.com/google/uuid"

	"github.com/gantryhq/gantry/domain/ids"
)

// newID returns a fresh id with the prefix: a UUIDv7 in lower-case hex
// without dashes, so ids sort by creation time and read well in logs.
func newID(p ids.Prefix) (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new %s id: %w", p, err)
	}
	return string(p) + "_" + hex.EncodeToString(u[:]), nil
}
