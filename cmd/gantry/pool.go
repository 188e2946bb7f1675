package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

func newPoolCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Manage worker pools and their workers",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPoolCreateCommand(g), newPoolListCommand(g), newPoolShowCommand(g), newPoolWorkersCommand(g),
		newPoolQueueCommand(g), newPoolDrainCommand(g, true), newPoolDrainCommand(g, false), newPoolCycleCommand(g),
		newPoolResetCommand(g))
	cmd.AddCommand(newPoolUpdateCommand(g), newPoolDeleteCommand(g))
	return cmd
}

// maxCSRFile bounds the CSR file read; real ones are a few KiB.
const maxCSRFile = 64 << 10

// readCSR reads the --csr file.
func readCSR(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("--csr: give the certificate signing request file (openssl req -new -newkey rsa:4096 -nodes -keyout gantry.key -out gantry.csr)")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--csr: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCSRFile+1))
	if err != nil {
		return "", fmt.Errorf("--csr %s: %w", path, err)
	}
	if len(b) > maxCSRFile {
		return "", fmt.Errorf("--csr %s: larger than %d KiB, not a CSR", path, maxCSRFile>>10)
	}
	return string(b), nil
}

func newPoolCreateCommand(g *globalOptions) *cobra.Command {
	var csrPath, description string
	var labels []string
	var driftLimit int32
	cmd := &cobra.Command{
		Use:   "create NAME --csr FILE",
		Short: "Create a private worker pool from a certificate signing request; prints the pool token",
		Long: `Create a private worker pool. Make a key and a CSR first, and keep the key:

  openssl req -new -newkey rsa:4096 -nodes -keyout gantry.key -out gantry.csr

Gantry's CA signs a certificate for the pool and the command prints the pool
token (GANTRY_TOKEN of the pool's launchers). The token holds the pool secret,
of which Gantry keeps only a hash: it cannot be shown again ("pool reset" makes
a new one).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			csr, err := readCSR(csrPath)
			if err != nil {
				return err
			}
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			resp, err := client.CreateWorkerPool(cmd.Context(), connect.NewRequest(&gantryv1.CreateWorkerPoolRequest{
				Name: args[0], Csr: csr, Description: description, Labels: labels, DriftDetectionRunLimit: driftLimit,
			}))
			if err != nil {
				return fmt.Errorf("pool create: %w", err)
			}
			return g.printPoolToken(cmd.OutOrStdout(), resp.Msg, resp.Msg.GetPool(), resp.Msg.GetToken())
		},
	}
	f := cmd.Flags()
	f.StringVar(&csrPath, "csr", "", "PEM certificate signing request file (required)")
	f.StringVar(&description, "description", "", "free-text description")
	f.StringArrayVar(&labels, "label", nil, "label (repeatable)")
	f.Int32Var(&driftLimit, "drift-run-limit", 0, "at most this many drift-detection runs at once (0: no limit)")
	_ = cmd.MarkFlagRequired("csr")
	return cmd
}

func newPoolResetCommand(g *globalOptions) *cobra.Command {
	var csrPath string
	cmd := &cobra.Command{
		Use:   "reset POOL --csr FILE",
		Short: "Give a pool a new certificate and secret; prints the new token (the old one stops working)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			csr, err := readCSR(csrPath)
			if err != nil {
				return err
			}
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			resp, err := client.ResetWorkerPool(cmd.Context(), connect.NewRequest(&gantryv1.ResetWorkerPoolRequest{Pool: args[0], Csr: csr}))
			if err != nil {
				return fmt.Errorf("pool reset: %w", err)
			}
			return g.printPoolToken(cmd.OutOrStdout(), resp.Msg, resp.Msg.GetPool(), resp.Msg.GetToken())
		},
	}
	cmd.Flags().StringVar(&csrPath, "csr", "", "PEM certificate signing request file (required)")
	_ = cmd.MarkFlagRequired("csr")
	return cmd
}

// printPoolToken prints a created or reset pool with its token.
func (g *globalOptions) printPoolToken(w io.Writer, msg proto.Message, p *gantryv1.WorkerPool, token string) error {
	if g.output == outputJSON {
		return writeJSON(w, msg)
	}
	if err := writePoolTable(w, p); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nPool token (shown once; start the pool's launchers with GANTRY_TOKEN set to it):\n%s\n", token)
	return err
}

func newPoolListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List worker pools by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			pools, err := allPages(func(token string) ([]*gantryv1.WorkerPool, string, error) {
				resp, err := client.ListWorkerPools(cmd.Context(), connect.NewRequest(&gantryv1.ListWorkerPoolsRequest{PageSize: listPageSize, PageToken: token}))
				if err != nil {
					return nil, "", fmt.Errorf("pool list: %w", err)
				}
				return resp.Msg.GetPools(), resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			all := &gantryv1.ListWorkerPoolsResponse{Pools: pools}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, all)
			}
			t := newTable(w)
			t.row("NAME", "ID", "WORKERS", "BUSY", "LABELS", "CREATED")
			for _, p := range all.GetPools() {
				t.row(p.GetName(), p.GetId(), fmt.Sprint(p.GetWorkers()), fmt.Sprint(p.GetBusyWorkers()),
					strings.Join(p.GetLabels(), ", "), formatTime(p.GetCreatedAt()))
			}
			return t.flush()
		},
	}
}

func newPoolShowCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show POOL",
		Short: "Show a worker pool (by name or id) and the stacks that use it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			resp, err := client.GetWorkerPool(cmd.Context(), connect.NewRequest(&gantryv1.GetWorkerPoolRequest{Pool: args[0]}))
			if err != nil {
				return fmt.Errorf("pool show: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			if err := writePoolTable(w, resp.Msg.GetPool()); err != nil {
				return err
			}
			fmt.Fprintln(w)
			t := newTable(w)
			t.row("USED BY", "ID")
			for _, s := range resp.Msg.GetUsedBy() {
				t.row(s.GetName(), s.GetId())
			}
			return t.flush()
		},
	}
}

// writePoolTable prints a pool's details.
func writePoolTable(w io.Writer, p *gantryv1.WorkerPool) error {
	t := newTable(w)
	t.row("id", p.GetId())
	t.row("name", p.GetName())
	t.row("description", p.GetDescription())
	t.row("labels", strings.Join(p.GetLabels(), ", "))
	limit := "no limit"
	if n := p.GetDriftDetectionRunLimit(); n > 0 {
		limit = fmt.Sprint(n)
	}
	t.row("drift run limit", limit)
	t.row("public", yesNo(p.GetPublic()))
	t.row("workers", fmt.Sprintf("%d (%d busy)", p.GetWorkers(), p.GetBusyWorkers()))
	c := p.GetCertificate()
	t.row("certificate", fmt.Sprintf("%s %d-bit, serial %s", enumName(c.GetKeyAlgorithm().String(), "KEY_ALGORITHM_"), c.GetKeyBits(), c.GetSerial()))
	t.row("fingerprint", c.GetFingerprint())
	t.row("generation", fmt.Sprint(p.GetGeneration()))
	t.row("created", formatTime(p.GetCreatedAt()))
	t.row("cycle requested", formatTime(p.GetCycleRequestedAt()))
	return t.flush()
}

func newPoolWorkersCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "workers POOL",
		Short: "List a pool's workers, with their launchers' versions (flagged when older than the server)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			resp, err := client.ListWorkers(cmd.Context(), connect.NewRequest(&gantryv1.ListWorkersRequest{Pool: args[0]}))
			if err != nil {
				return fmt.Errorf("pool workers: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			t := newTable(w)
			t.row("ID", "STATUS", "RUN", "REGISTERED", "VERSION", "METADATA")
			for _, wk := range resp.Msg.GetWorkers() {
				t.row(wk.GetId(), enumName(wk.GetStatus().String(), "WORKER_STATUS_"), wk.GetRunId(),
					formatTime(wk.GetRegisteredAt()), launcherVersion(wk, resp.Msg.GetServerVersion()), formatMetadata(wk.GetMetadata()))
			}
			return t.flush()
		},
	}
}

// launcherVersion shows a worker's launcher version, flagged when the
// server found it older than its own.
func launcherVersion(w *gantryv1.Worker, server string) string {
	if w.GetLauncherOutdated() {
		return w.GetLauncherVersion() + " (older than the server's " + server + ")"
	}
	return w.GetLauncherVersion()
}

// formatMetadata renders worker tags as sorted k=v pairs.
func formatMetadata(m map[string]string) string {
	pairs := make([]string, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " ")
}

func newPoolQueueCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "queue POOL",
		Short: "List a pool's runs: in progress first, then those waiting for a worker",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			resp, err := client.GetPoolQueue(cmd.Context(), connect.NewRequest(&gantryv1.GetPoolQueueRequest{Pool: args[0]}))
			if err != nil {
				return fmt.Errorf("pool queue: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg)
			}
			t := newTable(w)
			t.row("RUN", "STACK", "TYPE", "STATE", "WORKER", "CREATED")
			for _, r := range resp.Msg.GetRuns() {
				t.row(r.GetRunId(), r.GetStackId(), runTypeName(r.GetType()), runStateName(r.GetState()), r.GetWorkerId(), formatTime(r.GetCreatedAt()))
			}
			return t.flush()
		},
	}
}

func newPoolDrainCommand(g *globalOptions, drain bool) *cobra.Command {
	name, short := "drain", "Stop a worker from taking new runs (its current run finishes)"
	if !drain {
		name, short = "undrain", "Let a drained worker take runs again"
	}
	return &cobra.Command{
		Use:   name + " POOL WORKER",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			var wk *gantryv1.Worker
			if drain {
				resp, err := client.DrainWorker(cmd.Context(), connect.NewRequest(&gantryv1.DrainWorkerRequest{Pool: args[0], Worker: args[1]}))
				if err != nil {
					return fmt.Errorf("pool drain: %w", err)
				}
				wk = resp.Msg.GetWorker()
			} else {
				resp, err := client.UndrainWorker(cmd.Context(), connect.NewRequest(&gantryv1.UndrainWorkerRequest{Pool: args[0], Worker: args[1]}))
				if err != nil {
					return fmt.Errorf("pool undrain: %w", err)
				}
				wk = resp.Msg.GetWorker()
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, wk)
			}
			_, err = fmt.Fprintf(w, "worker %s is %s\n", wk.GetId(), enumName(wk.GetStatus().String(), "WORKER_STATUS_"))
			return err
		},
	}
}

func newPoolCycleCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cycle POOL",
		Short: "Ask every worker of a pool to exit (a running run is finished or handed back first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := g.poolClient()
			if err != nil {
				return err
			}
			resp, err := client.CyclePool(cmd.Context(), connect.NewRequest(&gantryv1.CyclePoolRequest{Pool: args[0]}))
			if err != nil {
				return fmt.Errorf("pool cycle: %w", err)
			}
			w := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(w, resp.Msg.GetPool())
			}
			_, err = fmt.Fprintf(w, "asked the workers of pool %s to exit\n", resp.Msg.GetPool().GetId())
			return err
		},
	}
}
