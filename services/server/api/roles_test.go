package api

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/services/platform/auth"
)

// procedures returns every procedure of every service of the gantry.v1
// proto package, as the generated code registered them.
func procedures(t *testing.T) []string {
	t.Helper()
	pkg := gantryv1.File_gantry_v1_apikeys_proto.Package()
	var out []string
	protoregistry.GlobalFiles.RangeFilesByPackage(pkg, func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			svc := f.Services().Get(i)
			for j := range svc.Methods().Len() {
				out = append(out, "/"+string(svc.FullName())+"/"+string(svc.Methods().Get(j).Name()))
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatalf("found no procedure in package %s", pkg)
	}
	return out
}

// Every procedure, today's and any added later, must have a role: one the
// table forgets is refused to everyone, which the tests of its feature
// would find late and confusingly.
func TestEveryProcedureHasARole(t *testing.T) {
	roles := Roles()
	if err := roles.Validate(); err != nil {
		t.Fatal(err)
	}
	all := procedures(t)
	for _, proc := range all {
		if _, ok := roles[proc]; !ok {
			t.Errorf("%s is not in the role table (services/server/api/roles.go): give it the lowest role that may call it", proc)
		}
	}
	for proc := range roles {
		if !slices.Contains(all, proc) {
			t.Errorf("the role table names %s, which is no procedure", proc)
		}
	}
}

func TestRoleTable(t *testing.T) {
	for proc, role := range Roles() {
		method := proc[strings.LastIndexByte(proc, '/')+1:]
		switch {
		case role == auth.Anonymous && proc != "/gantry.v1.SessionService/CreateSession":
			t.Errorf("%s needs no token: only opening a session may", proc)
		case strings.Contains(proc, ".ApiKeyService/") && role != apikey.RoleAdmin:
			t.Errorf("%s is %s: API keys are administrators' only", proc, role)
		case strings.Contains(proc, ".WorkerPoolService/") && !isRead(method) && role != apikey.RoleAdmin:
			t.Errorf("%s is %s: changing worker pools is administrators' only", proc, role)
		case isRead(method) && role != apikey.RoleReader && proc != "/gantry.v1.StateService/DownloadState" && !strings.Contains(proc, ".ApiKeyService/"):
			t.Errorf("%s reads and is %s: readers read everything but secrets", proc, role)
		case !isRead(method) && role == apikey.RoleReader:
			t.Errorf("%s changes something and readers may call it", proc)
		}
	}
}

// isRead reports whether a method only reads, by Gantry's naming.
func isRead(method string) bool {
	for _, p := range []string{"Get", "List", "Stream", "Download"} {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}
