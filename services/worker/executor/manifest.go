package executor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// manifestFile names the run a saved workspace belongs to, so that a worker
// never applies another run's plan.
const manifestFile = "gantry-workspace.json"

// manifest is the content of manifestFile.
type manifest struct {
	Version     int    `json:"version"`
	RunID       string `json:"run_id"`
	StackID     string `json:"stack_id"`
	Commit      string `json:"commit"`
	ProjectRoot string `json:"project_root"`
	Tool        string `json:"tool"`
}

func manifestOf(j Job) manifest {
	root, _ := cleanProjectRoot(j.ProjectRoot) // Validate refused a bad one
	return manifest{Version: 1, RunID: j.RunID, StackID: j.StackID, Commit: j.Commit, ProjectRoot: root, Tool: string(j.Tool)}
}

func writeManifest(workDir string, j Job) error {
	data, err := json.Marshal(manifestOf(j))
	if err != nil {
		return fmt.Errorf("encode the workspace manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(workDir, manifestFile), data, 0o600); err != nil {
		return fmt.Errorf("write the workspace manifest: %w", err)
	}
	return nil
}

// checkManifest verifies that the restored workspace in workDir is the one
// job planned.
func checkManifest(workDir string, j Job) error {
	data, err := os.ReadFile(filepath.Join(workDir, manifestFile))
	if err != nil {
		return fmt.Errorf("the saved workspace has no manifest: %w", err)
	}
	var got manifest
	if err := json.Unmarshal(data, &got); err != nil {
		return fmt.Errorf("the saved workspace's manifest: %w", err)
	}
	if want := manifestOf(j); got != want {
		return fmt.Errorf("the saved workspace belongs to run %s of stack %s at %s (root %q, %s), not to this run %s of stack %s at %s (root %q, %s)",
			got.RunID, got.StackID, got.Commit, got.ProjectRoot, got.Tool, want.RunID, want.StackID, want.Commit, want.ProjectRoot, want.Tool)
	}
	return nil
}
