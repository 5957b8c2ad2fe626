package registrator

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
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

// world is one private engine and what the tests need around it.
type world struct {
	d        *testservers.Docker
	cli      *client.Client
	hostname string
	web      string // image "reconf-test/web:v1", EXPOSE 8080/tcp
	app      string // image "localhost:5000/team/app:v2", EXPOSE 8080/tcp
}

func newWorld(t *testing.T) *world {
	t.Helper()
	d := testservers.DockerEngine(t)
	w := &world{d: d, cli: d.Client(t)}
	w.hostname, _ = os.Hostname()
	w.web = d.WebImage(t, "reconf-test/web:v1", "8080/tcp")
	w.app = d.WebImage(t, "localhost:5000/team/app:v2", "8080/tcp")
	return w
}

// ctr describes a container to run.
type ctr struct {
	name    string
	image   string
	env     []string
	labels  map[string]string
	publish []string // "8080/tcp" (a random port on 127.0.0.1) or "8080/tcp=18080"
	expose  []string // exposed only
	restart string   // restart policy
}

// run creates and starts a container and returns its ID.
func (w *world) run(t *testing.T, c ctr) string {
	t.Helper()
	if c.image == "" {
		c.image = w.web
	}
	cfg := &container.Config{Image: c.image, Env: c.env, Labels: c.labels, ExposedPorts: nat.PortSet{}}
	hc := &container.HostConfig{PortBindings: nat.PortMap{}}
	if c.restart != "" {
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(c.restart)}
	}
	for _, p := range c.publish {
		port, host, _ := strings.Cut(p, "=")
		cfg.ExposedPorts[nat.Port(port)] = struct{}{}
		hc.PortBindings[nat.Port(port)] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: host}}
	}
	for _, p := range c.expose {
		cfg.ExposedPorts[nat.Port(p)] = struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cr, err := w.cli.ContainerCreate(ctx, cfg, hc, nil, nil, c.name)
	if err != nil {
		t.Fatalf("create %s: %v", c.name, err)
	}
	if err := w.cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", c.name, err)
	}
	return cr.ID
}

func (w *world) inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := w.cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return c
}

// hostPort returns the port a container's port is published on.
func (w *world) hostPort(t *testing.T, id, port string) string {
	t.Helper()
	b := w.inspect(t, id).NetworkSettings.Ports[nat.Port(port)]
	if len(b) == 0 {
		t.Fatalf("container %s: %s not published", id, port)
	}
	return b[0].HostPort
}

func (w *world) stop(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	zero := 0
	if err := w.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &zero}); err != nil {
		t.Fatalf("stop %s: %v", id, err)
	}
}

func (w *world) start(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
}

func (w *world) kill(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.cli.ContainerKill(ctx, id, "KILL"); err != nil {
		t.Fatalf("kill %s: %v", id, err)
	}
}

func (w *world) rm(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("rm %s: %v", id, err)
	}
}

// clean removes every container (between subtests).
func (w *world) clean(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := w.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, c := range cs {
		if err := w.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatalf("rm %s: %v", c.ID, err)
		}
	}
}

// id is the service ID registrator gives a container's port.
func (w *world) id(name, port string) string { return w.hostname + ":" + name + ":" + port }

// proc is a `reconf registrator` process: its own process group, output in a log file,
// stopped by its pid.
type proc struct {
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	once sync.Once
	code int
}

// registrator starts `reconf registrator args…` against w's engine.
func (w *world) registrator(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(reconfBin, append([]string{"registrator"}, args...)...)
	p.cmd.Env = append(os.Environ(), "DOCKER_HOST="+w.d.Host)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start reconf registrator: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("reconf registrator %v\n%s", args, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits (SIGKILL after 10s, which fails the test).
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("reconf registrator (pid %d) still running 10s after SIGTERM; killing it", p.cmd.Process.Pid)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// killHard sends SIGKILL (reconf dies without a word) and waits.
func (p *proc) killHard(t *testing.T) {
	t.Helper()
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// wait waits for the process to exit on its own and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("reconf registrator still running after %v\n%s", within, p.out.String())
		return 0
	}
}

// poll is how often the tests look at a store or the engine (testutil.Until, consistently).
const poll = 50 * time.Millisecond

// consistently checks cond every poll for the whole duration.
func consistently(t *testing.T, during time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(during)
	for time.Now().Before(deadline) {
		if msg := cond(); msg != "" {
			t.Fatal(msg)
		}
		time.Sleep(poll)
	}
}
