package docker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// reconfBin is the real reconf binary, built once by TestMain.
var reconfBin string

func TestMain(m *testing.M) {
	testservers.RunWithReconf(m, &reconfBin, "")
}

// serveFile runs the test web image with file bind-mounted (as one file) at /srv/page, served
// over HTTP on a port published on 127.0.0.1; it returns the URL.
func serveFile(t *testing.T, cli *client.Client, image, name, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := &container.Config{Image: image, Env: []string{"FILE=/srv/page"}, ExposedPorts: nat.PortSet{"8080/tcp": {}}}
	hc := &container.HostConfig{
		PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}},
		Mounts:       []mount.Mount{{Type: mount.TypeBind, Source: file, Target: "/srv/page", ReadOnly: true}},
	}
	cr, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c, err := cli.ContainerInspect(ctx, cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := c.NetworkSettings.Ports["8080/tcp"]
	if len(b) == 0 {
		t.Fatalf("%s: 8080/tcp not published", name)
	}
	return "http://127.0.0.1:" + b[0].HostPort + "/"
}

func get(url string) (string, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}

// waitBody polls url until it answers want, for at most d, and returns how long that took.
func waitBody(t *testing.T, url, want string, d time.Duration) time.Duration {
	t.Helper()
	return testutil.Until(t, d, 20*time.Millisecond, func() error {
		if got, err := get(url); err != nil || got != want {
			return fmt.Errorf("%s: after %v got %q (err %v), want %q", url, d, got, err, want)
		}
		return nil
	})
}

// startReconf runs reconf with args and env; cleanup stops it by its pid.
func startReconf(t *testing.T, env []string, args ...string) *testutil.SyncBuffer {
	t.Helper()
	out := &testutil.SyncBuffer{}
	cmd := exec.Command(reconfBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- reconf output ---\n%s", out.String())
		}
	})
	return out
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestBindMountedDestination: a container serves its bind-mounted single file; reconf -watch
// finds the mount through the engine and writes in place, so the container sees each render.
// A second container's file with write = "rename" shows what a rename does: the container keeps
// the old inode and never sees the new content. A third container, started while reconf runs,
// sees the next render.
func TestBindMountedDestination(t *testing.T) {
	d := testservers.DockerEngine(t)
	cli := d.Client(t)
	image := d.WebImage(t, "reconf-test/web:v1", "8080/tcp")

	dir := t.TempDir()
	confdir, out := filepath.Join(dir, "etc"), filepath.Join(dir, "out")
	page, renamed := filepath.Join(out, "page.txt"), filepath.Join(out, "renamed.txt")
	writeFile(t, page, "old\n")
	writeFile(t, renamed, "old\n")
	data := filepath.Join(dir, "data.yaml")
	writeFile(t, data, "app:\n  v: \"1\"\n")
	late := filepath.Join(out, "late.txt")
	for name, extra := range map[string]string{"page": "", "renamed": "write = \"rename\"\n", "late": ""} {
		writeFile(t, filepath.Join(confdir, "conf.d", name+".toml"), fmt.Sprintf(
			"[template]\nsrc = \"page.tmpl\"\ndest = %q\nkeys = [\"/app\"]\ncheck_cmd = \"grep -q v= {{.src}}\"\n%s",
			filepath.Join(out, name+".txt"), extra))
	}
	writeFile(t, filepath.Join(confdir, "templates", "page.tmpl"), `v={{getv "/app/v"}}`+"\n")

	url := serveFile(t, cli, image, "page", page)
	renamedURL := serveFile(t, cli, image, "renamed", renamed)
	waitBody(t, url, "old\n", 15*time.Second)
	waitBody(t, renamedURL, "old\n", 15*time.Second)
	ino := inode(t, page)

	log := startReconf(t, []string{"DOCKER_HOST=" + d.Host},
		"-backend", "file", "-file", data, "-confdir", confdir, "-watch", "-log-level", "debug")
	took := waitBody(t, url, "v=1\n", 15*time.Second)
	t.Logf("first render seen in the container after %v", took)
	for i := 2; i <= 4; i++ {
		want := fmt.Sprintf("v=%d\n", i)
		start := time.Now()
		writeFile(t, data, fmt.Sprintf("app:\n  v: \"%d\"\n", i))
		waitBody(t, url, want, 10*time.Second)
		t.Logf("change %d seen in the container after %v", i, time.Since(start))
	}
	if got := inode(t, page); got != ino {
		t.Errorf("inode of %s changed: %d → %d", page, ino, got)
	}
	// The renamed destination has the new content on the host, not in its container.
	testutil.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if b, _ := os.ReadFile(renamed); string(b) != "v=4\n" {
			return fmt.Errorf("%s = %q, want v=4", renamed, b)
		}
		return nil
	})
	if got, err := get(renamedURL); err != nil || got != "old\n" {
		t.Errorf("container with write = \"rename\": %q, %v; want the old inode's \"old\\n\"", got, err)
	}
	// A container started while reconf runs (the engine's start event drops reconf's cache):
	// the very next render reaches it.
	lateURL := serveFile(t, cli, image, "late", late)
	waitBody(t, lateURL, "v=4\n", 15*time.Second)
	start := time.Now()
	writeFile(t, data, "app:\n  v: \"5\"\n")
	waitBody(t, lateURL, "v=5\n", 10*time.Second)
	t.Logf("container started after reconf: change seen after %v", time.Since(start))

	l := log.String()
	if n := strings.Count(l, "bind-mounts this file"); n != 2 || !strings.Contains(l, "container=page") || !strings.Contains(l, "container=late") {
		t.Errorf("reason logged %d times (want once per resource, naming containers page and late):\n%s", n, l)
	}
	if strings.Contains(l, "not reachable") {
		t.Errorf("engine reported unreachable:\n%s", l)
	}
}
