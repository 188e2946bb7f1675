package protocol_test

import (
	"maps"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gantryhq/gantry"

// workerSide are the packages a launcher is built from.
var workerSide = []string{
	module + "/services/worker/launcher",
	module + "/services/worker/executor",
	module + "/services/worker/protocol",
	module + "/services/worker/workerclient",
}

// serverOnly are what the worker side must not link: the PostgreSQL driver,
// the event store, the read models and every server package (the command
// layer among them), and the test helpers that start a database.
var serverOnly = []string{
	"github.com/jackc/pgx",
	module + "/eventstore",
	module + "/projections",
	module + "/services/server",
	module + "/services/testenv",
}

// TestWorkerSideLinksNothingOfTheServer proves with the go tool that no
// worker-side package depends, directly or through another package, on the
// server side.
func TestWorkerSideLinksNothingOfTheServer(t *testing.T) {
	for _, pkg := range workerSide {
		t.Run(path.Base(pkg), func(t *testing.T) {
			imports := goListDeps(t, pkg)
			// Each forbidden package is reported by the first forbidden one
			// on its import chain: where the worker side reaches the server.
			entries := map[string][]string{}
			for dep := range imports {
				if !serverOnlyPackage(dep) {
					continue
				}
				chain := importChain(imports, pkg, dep)
				i := slices.IndexFunc(chain, serverOnlyPackage)
				entries[chain[i]] = chain[:i+1]
			}
			for _, entry := range slices.Sorted(maps.Keys(entries)) {
				t.Errorf("%s links %s (and what it imports): %s", path.Base(pkg), entry, short(entries[entry]))
			}
		})
	}
}

// serverOnlyPackage reports whether dep is one of serverOnly or beneath one.
func serverOnlyPackage(dep string) bool {
	return slices.ContainsFunc(serverOnly, func(bad string) bool { return dep == bad || strings.HasPrefix(dep, bad+"/") })
}

// TestProtocolImportsOnlyDomainAndStandardLibrary keeps the protocol a
// leaf both sides can import.
func TestProtocolImportsOnlyDomainAndStandardLibrary(t *testing.T) {
	pkg := module + "/services/worker/protocol"
	imports := goListDeps(t, pkg)
	for dep := range imports {
		if dep != pkg && dep != module+"/domain" && !strings.HasPrefix(dep, module+"/domain/") {
			t.Errorf("protocol links %s: %s", dep, short(importChain(imports, pkg, dep)))
		}
	}
}

// goListDeps returns every package pkg depends on outside the standard
// library (pkg included), each with its direct imports, as `go list -deps`
// reports them.
func goListDeps(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to list dependencies: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{join .Imports \" \"}}{{end}}", pkg)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 {
			imports[fields[0]] = fields[1:]
		}
	}
	if _, ok := imports[pkg]; !ok {
		t.Fatalf("go list -deps %s did not list the package itself:\n%s", pkg, out)
	}
	return imports
}

// short prints an import chain with the module's own paths shortened.
func short(chain []string) string {
	out := make([]string, len(chain))
	for i, p := range chain {
		out[i] = strings.TrimPrefix(p, module+"/")
	}
	return strings.Join(out, " → ")
}

// importChain returns a shortest chain of imports from pkg to dep, to say
// where a forbidden dependency comes from.
func importChain(imports map[string][]string, pkg, dep string) []string {
	parent := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dep {
			var chain []string
			for ; p != ""; p = parent[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, next := range imports[p] {
			if _, seen := parent[next]; !seen {
				parent[next] = p
				queue = append(queue, next)
			}
		}
	}
	return []string{pkg, "…", dep}
}
