package docker

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// exampleDir is examples/docker, relative to this package.
const exampleDir = "../../examples/docker"

// copyExample copies examples/docker's conf.d and templates into a new confdir with dest
// pointed at cfg.
func copyExample(t *testing.T, cfg string) string {
	t.Helper()
	confdir := filepath.Join(t.TempDir(), "etc")
	for _, f := range []string{"conf.d/haproxy.toml", "templates/haproxy.cfg.tmpl"} {
		b, err := os.ReadFile(filepath.Join(exampleDir, f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/srv/haproxy/haproxy.cfg", cfg)
		writeFile(t, filepath.Join(confdir, f), s)
	}
	return confdir
}

// proxyClient sends one request at a time through the proxy, each on a new connection, and
// records who answered and what failed.
type proxyClient struct {
	url string

	mu       sync.Mutex
	n        int
	failures []string
	firstBy  map[string]time.Time // body (the container's hostname) → first answer
}

func (c *proxyClient) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer hc.CloseIdleConnections()
	for ctx.Err() == nil {
		body, err := getWith(hc, c.url)
		c.mu.Lock()
		c.n++
		if err != nil {
			c.failures = append(c.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
		} else if _, ok := c.firstBy[body]; !ok {
			c.firstBy[body] = time.Now()
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func getWith(hc *http.Client, url string) (string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 256)
	n, _ := resp.Body.Read(b)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %q", resp.Status, b[:n])
	}
	return strings.TrimSpace(string(b[:n])), nil
}

func (c *proxyClient) seen(name string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.firstBy[name]
	return at, ok
}

// runWeb starts a web container named (and with hostname) name, port 8080 exposed only: the
// registrator runs with -internal, so haproxy reaches it on the test's bridge.
func runWeb(t *testing.T, cli *client.Client, image, name string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cr, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Hostname: name, ExposedPorts: nat.PortSet{"8080/tcp": {}}},
		&container.HostConfig{}, nil, nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	start := time.Now()
	if err := cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return start
}

func removeContainer(t *testing.T, cli *client.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("rm -f %s: %v", name, err)
	}
}

// TestExample runs examples/docker end to end: web containers registered in etcd by reconf
// registrator, haproxy in a container (image built offline by build-haproxy-image.sh) with
// its config bind-mounted as one file, reconf -watch rendering it in place and reloading with
// docker kill -s HUP. A client sends requests through haproxy while containers start and die:
// none may fail, and every new container must answer within 2 s of its start.
func TestExample(t *testing.T) {
	d := testservers.DockerEngine(t)
	cli := d.Client(t)
	etcd := testservers.Etcd(t)
	web := d.WebImage(t, "reconf-example/web:v1", "8080/tcp")
	env := append(os.Environ(), "DOCKER_HOST="+d.Host)

	build := exec.Command(filepath.Join(exampleDir, "build-haproxy-image.sh"), "reconf-example/haproxy:local")
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-haproxy-image.sh: %v\n%s", err, out)
	}

	cfg := filepath.Join(t.TempDir(), "haproxy", "haproxy.cfg")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	confdir := copyExample(t, cfg)
	store := []string{"-backend", "etcd", "-node", "http://" + etcd.Addr, "-confdir", confdir}
	// The first config (no web container yet), written before haproxy starts: -sync-only,
	// since there is no haproxy to reload yet.
	first := exec.Command(reconfBin, append(store, "-onetime", "-sync-only")...)
	first.Env = env
	if out, err := first.CombinedOutput(); err != nil {
		t.Fatalf("reconf -onetime -sync-only: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cr, err := cli.ContainerCreate(ctx, &container.Config{Image: "reconf-example/haproxy:local", ExposedPorts: nat.PortSet{"8080/tcp": {}}},
		&container.HostConfig{
			PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}},
			Mounts:       []mount.Mount{{Type: mount.TypeBind, Source: cfg, Target: "/usr/local/etc/haproxy/haproxy.cfg", ReadOnly: true}},
		}, nil, nil, "haproxy")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, cr.ID)
	if err != nil || len(ins.NetworkSettings.Ports["8080/tcp"]) == 0 {
		t.Fatalf("inspect haproxy: %v", err)
	}
	url := "http://127.0.0.1:" + ins.NetworkSettings.Ports["8080/tcp"][0].HostPort + "/"
	t.Cleanup(func() {
		if t.Failed() {
			if rc, err := cli.ContainerLogs(context.Background(), "haproxy", container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
				b := make([]byte, 8<<10)
				n, _ := rc.Read(b)
				rc.Close()
				t.Logf("--- haproxy logs ---\n%s", b[:n])
			}
			b, _ := os.ReadFile(cfg)
			t.Logf("--- haproxy.cfg ---\n%s", b)
		}
	})

	startReconf(t, []string{"DOCKER_HOST=" + d.Host}, "registrator", "-internal", "etcd://"+etcd.Addr+"/services")
	rlog := startReconf(t, []string{"DOCKER_HOST=" + d.Host}, append(store, "-watch", "-log-level", "debug")...)

	runWeb(t, cli, web, "web1")
	runWeb(t, cli, web, "web2")
	waitBody(t, url, "web1\n", 15*time.Second) // the first render and reload made it through

	c := &proxyClient{url: url, firstBy: map[string]time.Time{}}
	cctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go c.run(cctx, done)
	defer func() { stop(); <-done }()

	// Five rounds: a new container starts, must answer within 2 s; the oldest one dies.
	running := []string{"web1", "web2"}
	for i := 3; i <= 7; i++ {
		name := fmt.Sprintf("web%d", i)
		started := runWeb(t, cli, web, name)
		testutil.Until(t, 2*time.Second-time.Since(started), 10*time.Millisecond, func() error {
			if _, ok := c.seen(name); !ok {
				return fmt.Errorf("%s: no answer within 2 s of its start", name)
			}
			return nil
		})
		at, _ := c.seen(name)
		t.Logf("%s: first answer %v after its start", name, at.Sub(started).Round(time.Millisecond))
		removeContainer(t, cli, running[0])
		running = append(running[1:], name)
		// Let the client send 50 more requests against the new set.
		c.mu.Lock()
		want := c.n + 50
		c.mu.Unlock()
		testutil.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
			c.mu.Lock()
			n := c.n
			c.mu.Unlock()
			if n < want {
				return fmt.Errorf("the client sent %d requests in 10 s, want 50", n-want+50)
			}
			return nil
		})
	}
	stop()
	<-done
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Logf("%d requests through haproxy, %d failed", c.n, len(c.failures))
	if len(c.failures) > 0 {
		t.Errorf("failed requests:\n%s", strings.Join(c.failures, "\n"))
	}
	if l := rlog.String(); !strings.Contains(l, "bind-mounts this file") || !strings.Contains(l, "container=haproxy") {
		t.Errorf("reconf did not say it writes haproxy.cfg in place for container haproxy:\n%s", l)
	}
	if c.n < 200 {
		t.Errorf("only %d requests", c.n)
	}
}
