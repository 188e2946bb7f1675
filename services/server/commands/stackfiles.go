package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/stack"
	"github.com/gantryhq/gantry/eventstore/aggregate"
)

// MountStackFile mounts content at path in the workspace of the stack's
// runs (see stack.MountFile). Like a secret variable's value, the content
// is encrypted here, before the command is built: the domain and the events
// only ever see its ciphertext. It returns the stack id and the clean path.
func (s *Service) MountStackFile(ctx context.Context, c Caller, ref, path string, content []byte) (id, clean string, err error) {
	// Check what can be checked before encrypting: a bad path or a file too
	// large must fail the same way whatever the keeper.
	var p domain.Problems
	clean, err = stack.CleanFilePath(path)
	p.Check(err)
	if len(content) > stack.MaxFileSize {
		p.Addf("content", "is %d bytes: a mounted file is at most %d KiB", len(content), stack.MaxFileSize>>10)
	}
	if err := p.Err(); err != nil {
		return "", "", err
	}
	ciphertext, err := s.cfg.Secrets.Encrypt(ctx, content)
	if err != nil {
		return "", "", fmt.Errorf("encrypt the content of %s: %w", clean, err)
	}
	id, err = s.stackCommand(ctx, c, "mount stack file", ref, func(_ context.Context, _ *aggregate.Unit, stk *stackAggregate, at time.Time) error {
		_, err := stk.Do(stack.MountFile{Path: clean, Size: int64(len(content)), Ciphertext: ciphertext, Actor: c.Actor, At: at})
		return err
	})
	return id, clean, err
}
