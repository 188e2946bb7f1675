// Package runnerimage builds Gantry's default runner image locally, from
// the Dockerfile beside this file and the host's static busybox: no
// registry is needed.
package runnerimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

//go:embed Dockerfile
var dockerfile []byte

// passwd and group name the containers' default user (executor.DefaultUser),
// whose home is the run's.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\ngantry:x:10001:10001:gantry:/mnt/workspace/home:/bin/sh\n"
	group  = "root:x:0:\ngantry:x:10001:\n"
)

// caBundles are where Debian and Red Hat keep the system's CA bundle:
// terraform inside the container needs it to fetch providers over HTTPS.
var caBundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}

// Exists reports whether the engine has image tag.
func Exists(ctx context.Context, cli *client.Client, tag string) (bool, error) {
	_, err := cli.ImageInspect(ctx, tag)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect image %s: %w", tag, err)
	}
	return true, nil
}

// Build builds the default runner image as tag, writing the build's
// progress to progress (nil discards it).
func Build(ctx context.Context, cli *client.Client, tag string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	buildContext, err := contextTar()
	if err != nil {
		return fmt.Errorf("build the runner image %s: %w", tag, err)
	}
	res, err := cli.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Dockerfile: "Dockerfile",
		Labels: map[string]string{"org.opencontainers.image.title": "gantry runner"},
	})
	if err != nil {
		return fmt.Errorf("build the runner image %s: %w", tag, err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("build the runner image %s: %w", tag, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("build the runner image %s: %s", tag, strings.TrimSpace(msg.Error))
		}
		_, _ = io.WriteString(progress, msg.Stream)
	}
}

// contextTar is the build context: the Dockerfile, busybox, the user
// files and the CA bundle (empty if the host has none).
func contextTar() (io.Reader, error) {
	busybox, err := staticBusybox()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"Dockerfile": dockerfile, "passwd": []byte(passwd), "group": []byte(group), "ca-certificates.crt": nil}
	for _, p := range caBundles {
		if data, err := os.ReadFile(p); err == nil {
			files["ca-certificates.crt"] = data
			break
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(busybox)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "busybox", Mode: 0o755, Size: fi.Size()}); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// staticBusybox finds a statically linked busybox on the host.
func staticBusybox() (string, error) {
	candidates := []string{"/bin/busybox", "/usr/bin/busybox"}
	if p, err := exec.LookPath("busybox"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	for _, p := range candidates {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		if f, err := elf.Open(real); err == nil {
			static := true
			for _, prog := range f.Progs {
				if prog.Type == elf.PT_INTERP {
					static = false
				}
			}
			f.Close()
			if static {
				return real, nil
			}
		}
	}
	return "", errors.New("no statically linked busybox on this host: install it (Debian: apt-get install busybox-static)")
}
