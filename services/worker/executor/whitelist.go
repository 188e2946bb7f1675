package executor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gantryhq/gantry/domain/stack"
)

// WhitelistVariables turns GANTRY_WHITELIST_ENVS, a comma-separated list of
// the launcher's variable names, into the variables runs get. A name
// prefixed with ro_ goes to read-only phases only and one prefixed with wo_
// to write phases only (see WritePhase); the prefix is not part of the
// variable's name. lookup reads the launcher's environment (os.LookupEnv);
// names it does not know are left out. The launcher marks the ones also
// listed in GANTRY_MASK_ENVS through Job.MaskNames.
func WhitelistVariables(list string, lookup func(string) (string, bool)) ([]Variable, error) {
	var (
		out  []Variable
		errs []error
		seen = map[string]string{}
	)
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, scope := entry, stack.ScopeAll
		if rest, ok := strings.CutPrefix(entry, "ro_"); ok {
			name, scope = rest, stack.ScopeReadOnly
		} else if rest, ok := strings.CutPrefix(entry, "wo_"); ok {
			name, scope = rest, stack.ScopeWriteOnly
		}
		if !envNamePattern.MatchString(name) {
			errs = append(errs, fmt.Errorf("%q is not a variable name", entry))
			continue
		}
		if prev, dup := seen[name+"/"+string(scope)]; dup {
			errs = append(errs, fmt.Errorf("%q repeats %q", entry, prev))
			continue
		}
		seen[name+"/"+string(scope)] = entry
		if value, ok := lookup(name); ok {
			out = append(out, Variable{Name: name, Value: value, Scope: scope})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("whitelisted variables: %w", err)
	}
	return out, nil
}
