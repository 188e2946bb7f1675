package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/platform/settings"
)

// serverSideCommands are the top-level commands that run a part of Gantry
// rather than call its API; every other command but localCommands is a
// client of the API (settings.CLI).
var serverSideCommands = map[string]bool{
	"dev": true, "server": true, "migrate": true, "projector": true, "scheduler": true,
	"drain": true, "launcher": true, "runner-image": true,
}

// localCommands read no variable: they work whatever the environment says.
var localCommands = map[string]bool{"version": true, "help": true, "completion": true}

// commandNames are the names cmd goes by in settings.Var.Commands: its path
// below gantry, and settings.CLI for a client of the API.
func commandNames(cmd *cobra.Command) []string {
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	if cmd == cmd.Root() {
		return nil
	}
	top := strings.Fields(path)[0]
	switch {
	case serverSideCommands[top]:
		return []string{path}
	case localCommands[top]:
		return nil
	}
	return []string{path, settings.CLI}
}

// environmentOf returns the variables cmd reads.
func environmentOf(cmd *cobra.Command) []*settings.Var {
	return settings.For(commandNames(cmd)...)
}

// checkEnvironment refuses to run cmd while a variable it reads has a value
// its kind does not accept, naming each such variable and the problem.
func checkEnvironment(cmd *cobra.Command, getenv func(string) string) error {
	return settings.Check(getenv, environmentOf(cmd)...)
}

// addEnvironmentHelp ends the help of each runnable command under root with
// the variables it reads, their defaults and examples.
func addEnvironmentHelp(root *cobra.Command) {
	for _, c := range allSubcommands(root) {
		vars := environmentOf(c)
		if len(vars) == 0 || !c.Runnable() {
			continue
		}
		long := c.Long
		if long == "" {
			long = c.Short
		}
		c.Long = strings.TrimRight(long, "\n") + "\n\n" + settings.Help(vars)
	}
}
