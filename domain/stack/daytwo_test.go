package stack

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/eventtest"
)

var (
	managed = StackCreated{StackID: stackID, Settings: defaults, ManagedState: true, At: at(0), Actor: alice}
	kubecfg = StackFileMounted{Path: "config/kube.yaml", Size: 12, Ciphertext: []byte{9, 9, 9}, At: at(1), Actor: alice}
)

// Deleting a stack whose managed state holds resources, mounted files and
// their shared namespace with variables: (given events, command) → events | error.
func TestDecideDeleteAndFiles(t *testing.T) {
	mount := func(mod func(*MountFile)) MountFile {
		c := MountFile{Path: "config/kube.yaml", Size: 12, Ciphertext: []byte{9, 9, 9}, Actor: alice, At: at(1)}
		mod(&c)
		return c
	}
	cases := []struct {
		name  string
		given []Event
		cmd   Command
		want  []Event
		err   *wantErr
	}{
		// Delete and the resources of the managed state
		{"delete a managed stack without resources", []Event{managed}, Delete{Actor: alice, At: at(5)},
			[]Event{StackDeleted{At: at(5), Actor: alice}}, nil},
		{"delete a managed stack holding resources", []Event{managed}, Delete{ManagedResources: 3, Actor: alice, At: at(5)},
			nil, is(ErrHasResources)},
		{"force the delete of a managed stack holding resources", []Event{managed}, Delete{Force: true, ManagedResources: 3, Actor: alice, At: at(5)},
			[]Event{StackDeleted{Forced: true, ManagedResources: 3, At: at(5), Actor: alice}}, nil},
		{"force without resources records no force", []Event{managed}, Delete{Force: true, Actor: alice, At: at(5)},
			[]Event{StackDeleted{At: at(5), Actor: alice}}, nil},
		{"a stack without managed state has no resources of Gantry's", []Event{created}, Delete{ManagedResources: 3, Actor: alice, At: at(5)},
			[]Event{StackDeleted{At: at(5), Actor: alice}}, nil},
		{"force does not override a run holding the lock", []Event{managed, enqueued(run1, alice), acquired(run1)},
			Delete{Force: true, Actor: alice, At: at(5)}, nil, is(ErrInUse)},
		{"negative resources", []Event{managed}, Delete{ManagedResources: -1, Actor: alice, At: at(5)}, nil, invalid("managed_resources")},

		// MountFile
		{"mount a file", []Event{created}, mount(func(*MountFile) {}), []Event{kubecfg}, nil},
		{"mount the same content again", []Event{created, kubecfg}, mount(func(*MountFile) {}), nil, nil},
		{"replace a mounted file", []Event{created, kubecfg}, mount(func(c *MountFile) { c.Ciphertext, c.At = []byte{7}, at(2) }),
			[]Event{StackFileMounted{Path: "config/kube.yaml", Size: 12, Ciphertext: []byte{7}, At: at(2), Actor: alice}}, nil},
		{"an empty file", []Event{created}, mount(func(c *MountFile) { c.Path, c.Size = ".env", 0 }),
			[]Event{StackFileMounted{Path: ".env", Ciphertext: []byte{9, 9, 9}, At: at(1), Actor: alice}}, nil},
		{"an absolute path", []Event{created}, mount(func(c *MountFile) { c.Path = "/etc/passwd" }), nil, invalid("path")},
		{"a path climbing out", []Event{created}, mount(func(c *MountFile) { c.Path = "../secrets" }), nil, invalid("path")},
		{"a path climbing out and back", []Event{created}, mount(func(c *MountFile) { c.Path = "a/../b" }), nil, invalid("path")},
		{"a path that is not clean", []Event{created}, mount(func(c *MountFile) { c.Path = "./config//kube.yaml" }), nil, invalid("path")},
		{"no ciphertext", []Event{created}, mount(func(c *MountFile) { c.Ciphertext = nil }), nil, invalid("ciphertext")},
		{"too large", []Event{created}, mount(func(c *MountFile) { c.Size = MaxFileSize + 1 }), nil, invalid("size")},
		{"the path of a variable", []Event{created, plainEnv}, mount(func(c *MountFile) { c.Path = "TF_LOG" }), nil, invalid("path")},
		{"mount on a deleted stack", []Event{created, StackDeleted{At: at(1), Actor: alice}}, mount(func(*MountFile) {}), nil, is(domain.ErrNotFound)},

		// Variables and files share one namespace
		{"a variable at the path of a file", []Event{created, StackFileMounted{Path: "TOKEN", Size: 1, Ciphertext: []byte{1}, At: at(1), Actor: alice}},
			SetEnv{Key: "TOKEN", Value: "x", Actor: alice, At: at(2)}, nil, invalid("key")},
		{"env delete removes a mounted file", []Event{created, kubecfg}, DeleteEnv{Key: "config/kube.yaml", Actor: bob, At: at(2)},
			[]Event{StackFileUnmounted{Path: "config/kube.yaml", At: at(2), Actor: bob}}, nil},
		{"env delete of neither", []Event{created, kubecfg}, DeleteEnv{Key: "config/other.yaml", Actor: bob, At: at(2)}, nil, is(domain.ErrNotFound)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(given(tc.given...), tc.cmd)
			for _, e := range got {
				eventtest.RoundTrip(t, e)
			}
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != nil && !errors.Is(err, tc.err.is):
				t.Fatalf("error %v, want %v", err, tc.err.is)
			case tc.err != nil && tc.err.field != "" && !hasField(err, tc.err.field):
				t.Errorf("error %v does not name field %q", err, tc.err.field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestHasResourcesSaysHowToGoOn(t *testing.T) {
	_, err := Decide(given(managed), Delete{ManagedResources: 2, Actor: alice, At: at(5)})
	if err == nil || !strings.Contains(err.Error(), "2 resource(s)") || !strings.Contains(err.Error(), "force") {
		t.Fatalf("error %v: want the count and the way out", err)
	}
}

func TestCleanFilePath(t *testing.T) {
	for in, want := range map[string]string{
		"kubeconfig": "kubeconfig", "config/app.json": "config/app.json", "./a//b": "a/b", ".terraformrc": ".terraformrc",
		"a/./b": "a/b", "..hidden": "..hidden",
	} {
		if got, err := CleanFilePath(in); err != nil || got != want {
			t.Errorf("CleanFilePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", " ", "/abs", "..", "../x", "x/..", "x/../../y", "dir/", ".", "./", "a\x00b", "a\nb", strings.Repeat("a", MaxFilePathLength+1)} {
		if _, err := CleanFilePath(in); !hasField(err, "path") {
			t.Errorf("CleanFilePath(%q): %v, want a problem with path", in, err)
		}
	}
}

func TestApplyFiles(t *testing.T) {
	s := given(created, kubecfg, StackFileMounted{Path: "a.txt", Size: 1, Ciphertext: []byte{1}, At: at(2), Actor: bob})
	files := s.Files()
	if len(files) != 2 || files[0].Path != "a.txt" || files[1].Path != "config/kube.yaml" || files[1].Size != 12 {
		t.Fatalf("files %+v", files)
	}
	files[1].Ciphertext[0] = 0
	if s.Files()[1].Ciphertext[0] != 9 {
		t.Error("Files shares the ciphertext with the state")
	}
	copied := s
	copied.Apply(StackFileUnmounted{Path: "a.txt", At: at(3), Actor: bob})
	if len(copied.Files()) != 1 || len(s.Files()) != 2 {
		t.Errorf("unmount: %d files, the original copy %d", len(copied.Files()), len(s.Files()))
	}
}
