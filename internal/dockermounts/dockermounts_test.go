package dockermounts

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"go.uber.org/goleak"

	"github.com/reconf/reconf/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFileMountsOnlyFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := fileMounts([]container.Summary{
		{ID: "abc", Names: []string{"/proxy"}, Mounts: []container.MountPoint{
			{Type: mount.TypeBind, Source: file, Destination: "/etc/haproxy.cfg"},
			{Type: mount.TypeBind, Source: dir, Destination: "/conf"},
			{Type: mount.TypeVolume, Source: "/var/lib/docker/volumes/v/_data", Destination: "/data"},
		}},
		{ID: "def", Mounts: []container.MountPoint{{Type: mount.TypeBind, Source: file + "/../haproxy.cfg"}}},
	})
	if len(got) != 1 || got[file] != "proxy" {
		t.Errorf("fileMounts = %v, want only %s → proxy", got, file)
	}
}

func TestNoEngine(t *testing.T) {
	old := defaultSocket
	t.Cleanup(func() { defaultSocket = old })
	defaultSocket = filepath.Join(t.TempDir(), "docker.sock")
	if f, err := New(Config{}); f != nil || err != nil {
		t.Fatalf("New without DOCKER_HOST or socket = %v, %v; want nil, nil", f, err)
	}
}

func TestUnreachableEngineSaysNoQuietly(t *testing.T) {
	var log testutil.SyncBuffer
	sock := filepath.Join(t.TempDir(), "docker.sock")
	f, err := New(Config{Host: "unix://" + sock, TTL: time.Hour, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	for range 50 {
		if c, ok := f.BindMounted("/etc/haproxy.cfg"); ok {
			t.Fatalf("BindMounted = %q, true; want false", c)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("50 answers took %v", d)
	}
	if n := strings.Count(log.String(), "not reachable"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, log.String())
	}
}

// TestTLSFromEnvironment: a tcp:// engine is reached with the TLS files the docker CLI reads
// (DOCKER_CERT_PATH); missing files are an error, not a silent plain-text connection.
func TestTLSFromEnvironment(t *testing.T) {
	t.Setenv("DOCKER_CERT_PATH", filepath.Join(t.TempDir(), "no-certs"))
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	f, err := New(Config{Host: "tcp://127.0.0.1:2376"})
	if err == nil {
		f.Close()
		t.Fatal("New ignored DOCKER_CERT_PATH (no ca.pem there): want an error")
	}
}
