package domain

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainImportsOnlyTheStandardLibrary proves with the go tool that the
// domain packages depend on nothing but the standard library and each other:
// no I/O library, no driver, nothing of the services.
func TestDomainImportsOnlyTheStandardLibrary(t *testing.T) {
	const domain = "github.com/gantryhq/gantry/domain"
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", domain+"/...").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s/...: %v\n%s", domain, err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed no domain package")
	}
	for _, dep := range deps {
		if dep != domain && !strings.HasPrefix(dep, domain+"/") {
			t.Errorf("the domain depends on %s", dep)
		}
	}
}
