package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// versionInfo describes this binary, from the build information Go embeds.
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, ok := debug.ReadBuildInfo()
			if !ok {
				return fmt.Errorf("version: binary has no build information")
			}
			return writeVersion(cmd.OutOrStdout(), g.output, buildVersion(info))
		},
	}
}

// versionLine is this binary's version in one line, for --version.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(no build information)"
	}
	return buildVersion(info).line()
}

// line renders v as "v1.2.3 (revision abc123, modified, go1.26.8)".
func (v versionInfo) line() string {
	var details []string
	if v.Revision != "" {
		details = append(details, "revision "+v.Revision)
		if v.Modified {
			details = append(details, "modified")
		}
	}
	details = append(details, v.Go)
	return v.Version + " (" + strings.Join(details, ", ") + ")"
}

func buildVersion(info *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: info.Main.Version, Go: info.GoVersion}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func writeVersion(w io.Writer, output string, v versionInfo) error {
	if output == outputJSON {
		if err := json.NewEncoder(w).Encode(v); err != nil {
			return fmt.Errorf("version: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version\t%s\n", v.Version)
	if v.Revision != "" {
		modified := ""
		if v.Modified {
			modified = " (modified)"
		}
		fmt.Fprintf(tw, "revision\t%s%s\n", v.Revision, modified)
	}
	if v.Time != "" {
		fmt.Fprintf(tw, "commit time\t%s\n", v.Time)
	}
	fmt.Fprintf(tw, "go\t%s\n", v.Go)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("version: %w", err)
	}
	return nil
}
