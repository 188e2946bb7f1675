package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// checkUsage makes every command under root say plainly what is wrong with
// how it was called, rather than printing help and succeeding (a typo in a
// CI script must fail) or cobra's bare "accepts 1 arg(s), received 0":
//   - a command group given an unknown subcommand fails, suggesting the
//     closest ones; without one it prints its help;
//   - a command given too few or too many arguments names itself and the
//     argument missing or unexpected, with its usage line.
//
// It applies to the commands added so far, so the root calls it last.
func checkUsage(root *cobra.Command) {
	for _, c := range append([]*cobra.Command{root}, allSubcommands(root)...) {
		if c.HasSubCommands() && !c.Runnable() {
			// Cobra's own default distance, which only its root applies.
			c.SuggestionsMinimumDistance = 2
			c.Args = cobra.ArbitraryArgs
			c.RunE = groupRun
			continue
		}
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return argsError(cmd, args, err)
				}
				return nil
			}
		}
	}
}

func allSubcommands(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range c.Commands() {
		out = append(out, sub)
		out = append(out, allSubcommands(sub)...)
	}
	return out
}

// groupRun is what a command group does when it is run itself: its help,
// or an error for an unknown subcommand.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(": did you mean %q", s[0])
		for _, more := range s[1:] {
			msg += fmt.Sprintf(" or %q", more)
		}
		msg += "?"
	}
	return fmt.Errorf("%s (%s --help lists the commands)", msg, cmd.CommandPath())
}

// argsError explains a refusal of cmd's argument check: which argument of
// its usage line is missing, or which one is unexpected.
func argsError(cmd *cobra.Command, args []string, err error) error {
	names := argNames(cmd.Use)
	required := 0
	variadic := false
	for _, n := range names {
		if !strings.HasPrefix(n, "[") {
			required++
		}
		variadic = variadic || strings.HasSuffix(n, "...") || strings.HasSuffix(n, "...]")
	}
	usage := "usage: " + cmd.UseLine()
	// Errors are printed after "gantry: ", so the path goes without it.
	name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	switch {
	case len(args) < required:
		return fmt.Errorf("%s: missing %s (%s)", name, strings.Join(names[len(args):required], " "), usage)
	case len(args) > len(names) && !variadic:
		return fmt.Errorf("%s: unexpected argument %q (%s)", name, args[len(names)], usage)
	default:
		return fmt.Errorf("%s: %w (%s)", name, err, usage)
	}
}

// argNames lists the positional arguments of a Use line ("trigger STACK",
// "task STACK -- COMMAND...", "rebuild [NAME...]"): the words after the
// command's name, skipping flags and their values and the "--" separator.
func argNames(use string) []string {
	words := strings.Fields(use)
	var out []string
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "--":
		case strings.HasPrefix(w, "-"):
			// A flag in the usage line ("--csr FILE"): its value is not an argument.
			if i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				i++
			}
		default:
			out = append(out, w)
		}
	}
	return out
}
