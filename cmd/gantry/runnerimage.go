package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/worker/executor"
	"github.com/gantryhq/gantry/services/worker/runnerimage"
)

func newRunnerImageCommand(getenv func(string) string) *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:   "runner-image",
		Short: "Build the default runner image of the Docker executor on this host",
		Long: `Build Gantry's default runner image (gantry/runner:1) on the Docker engine at
DOCKER_HOST or the default socket, from the Dockerfile in services/worker/runnerimage
and this host's static busybox (Debian: busybox-static). Nothing is pulled. A
docker-based gantry launcher builds it itself when it is missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cli, err := executor.Engine(settings.DockerHost.Value(getenv))
			if err != nil {
				return err
			}
			defer cli.Close()
			return runnerimage.Build(cmd.Context(), cli, tag, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&tag, "tag", executor.DefaultRunnerImage, "the image's name")
	return cmd
}

// ensureRunnerImage builds the default runner image when the Docker
// executor would use it and the engine does not have it, with a progress
// line on out.
func ensureRunnerImage(ctx context.Context, docker *executor.DockerConfig, out io.Writer) error {
	if docker.DefaultImage != "" && docker.DefaultImage != executor.DefaultRunnerImage {
		return nil
	}
	cli, err := executor.Engine(docker.Host)
	if err != nil {
		return err
	}
	defer cli.Close()
	if ok, err := runnerimage.Exists(ctx, cli, executor.DefaultRunnerImage); err != nil || ok {
		return err
	}
	fmt.Fprintf(out, "building the runner image %s (once, from this host's busybox)…\n", executor.DefaultRunnerImage)
	if err := runnerimage.Build(ctx, cli, executor.DefaultRunnerImage, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "built the runner image %s\n", executor.DefaultRunnerImage)
	return nil
}
