package executor_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) {
	for _, tool := range []string{"git", "terraform", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "the executor's tests need %s: %v\n", tool, err)
			os.Exit(1)
		}
	}
	testenv.MainNoLeaks(m, checkNoContainersLeft)
}
