package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/platform/tracing"
)

// startTracing starts tracing as the standard OpenTelemetry variables
// say: on when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and neither OTEL_SDK_DISABLED
// nor OTEL_TRACES_EXPORTER=none says otherwise), over
// OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf or grpc). service is the
// default service.name (OTEL_SERVICE_NAME wins).
func startTracing(ctx context.Context, getenv func(string) string, service string) (*tracing.Tracing, error) {
	cfg := tracing.Config{
		Endpoint:       settings.OTLPEndpoint.Value(getenv),
		TracesEndpoint: settings.OTLPTracesEndpoint.Value(getenv),
		Protocol:       settings.OTLPTracesProtocol.Value(getenv),
		ServiceName:    service,
		Version:        binaryVersion(),
	}
	if cfg.Protocol == "" {
		cfg.Protocol = settings.OTLPProtocol.Value(getenv)
	}
	disabled, err := settings.OTelSDKDisabled.Bool(getenv)
	if err != nil {
		return nil, err
	}
	if disabled || strings.EqualFold(settings.OTelTracesExporter.Value(getenv), "none") {
		cfg.Endpoint, cfg.TracesEndpoint = "", ""
	}
	return tracing.Start(ctx, cfg)
}

// binaryVersion is this binary's module version ("" when unknown).
func binaryVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return buildVersion(info).Version
}

// stopTracing flushes the spans still buffered at exit.
func stopTracing(t *tracing.Tracing, log *slog.Logger) {
	if err := t.Shutdown(context.Background()); err != nil {
		log.Warn("could not export the last spans", "err", err)
	}
}

// instrumentationFlag adds --instrumentation-listen to cmd, defaulting to
// def, and returns what resolves it: the flag when given, else
// GANTRY_INSTRUMENTATION_LISTEN, else def. An empty address serves no
// probes and no metrics; any other must be host:port.
func instrumentationFlag(cmd *cobra.Command, getenv func(string) string, def string) func() (string, error) {
	var listen string
	cmd.Flags().StringVar(&listen, "instrumentation-listen", def,
		`address of the probes (/startup, /readiness, /liveness) and Prometheus /metrics; "" turns them off (env GANTRY_INSTRUMENTATION_LISTEN)`)
	return func() (string, error) {
		name, addr := "--instrumentation-listen", listen
		if v, ok := settings.InstrumentationListen.Lookup(getenv); ok && !cmd.Flags().Changed("instrumentation-listen") {
			name, addr = settings.InstrumentationListen.Name, v
		}
		if addr == "" {
			return "", nil
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("%s %q: want host:port (or \"\" for none): %w", name, addr, err)
		}
		return addr, nil
	}
}
