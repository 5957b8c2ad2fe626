package testservers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Docker is a private Docker engine started for one test (Debian's docker.io, as
// ../shared/SERVERS.md describes): its own data root, exec root, pidfile, unix socket and
// bridge, no iptables rules, no sysctl changes. Containers get addresses only on that bridge;
// ports published on 127.0.0.1 work through docker-proxy.
type Docker struct {
	Host    string // DOCKER_HOST value: unix://<socket>
	Socket  string
	Bridge  string // the bridge's name
	Gateway string // the bridge's address (the containers' gateway)
	Subnet  string // the bridge's /24
	dataDir string
	execDir string
	logPath string
	pidFile string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// DockerEngine starts dockerd (root is needed for the bridge and the mounts) and waits until it
// answers. Cleanup removes every container, stops dockerd by its pid, unmounts what it left
// and deletes the bridge. A missing dockerd fails the test.
func DockerEngine(t testing.TB) *Docker {
	t.Helper()
	for _, b := range []string{"dockerd", "ip", "containerd", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("testservers: docker: %s not found: %v (apt-get install -y docker.io; scripts/install-deps.sh)", b, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("testservers: docker: dockerd needs root (a bridge, mounts)")
	}
	root, err := os.MkdirTemp("", "rd-") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	d := &Docker{
		Bridge:  "rcbr" + hex.EncodeToString(suffix[:]),
		dataDir: filepath.Join(root, "data"),
		execDir: filepath.Join(root, "exec"),
		Socket:  filepath.Join(root, "docker.sock"),
		logPath: filepath.Join(root, "dockerd.log"),
		pidFile: filepath.Join(root, "dockerd.pid"),
	}
	d.Host = "unix://" + d.Socket
	t.Cleanup(func() {
		d.cleanup(t)
		if t.Failed() {
			t.Logf("--- dockerd log (%s), last 8 KiB ---\n%s", d.logPath, tail(d.logPath, 8<<10))
		}
		_ = os.RemoveAll(root)
	})
	if err := d.makeBridge(); err != nil {
		t.Fatalf("testservers: docker: %v", err)
	}
	if err := d.start(); err != nil {
		t.Fatalf("testservers: docker: %v\n--- dockerd log ---\n%s", err, tail(d.logPath, 8<<10))
	}
	return d
}

// makeBridge creates the bridge on a 172.29.X.0/24 no other interface uses.
func (d *Docker) makeBridge() error {
	out, err := exec.Command("ip", "-4", "-o", "addr").Output()
	if err != nil {
		return fmt.Errorf("ip addr: %w", err)
	}
	var b [1]byte
	_, _ = rand.Read(b[:])
	for i := range 250 {
		x := (int(b[0])+i)%250 + 2
		subnet := fmt.Sprintf("172.29.%d.", x)
		if strings.Contains(string(out), subnet) {
			continue
		}
		d.Gateway, d.Subnet = subnet+"1", subnet+"0/24"
		for _, args := range [][]string{
			{"link", "add", d.Bridge, "type", "bridge"},
			{"addr", "add", d.Gateway + "/24", "dev", d.Bridge},
			{"link", "set", d.Bridge, "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		return nil
	}
	return fmt.Errorf("no free 172.29.x.0/24 for the bridge")
}

func (d *Docker) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	lf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("dockerd",
		"--data-root", d.dataDir, "--exec-root", d.execDir, "--pidfile", d.pidFile,
		"-H", d.Host, "--bridge", d.Bridge, "--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--storage-driver", "overlay2")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start dockerd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(done)
	}()
	d.cmd, d.done = cmd, done
	cli, err := d.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for delay := 50 * time.Millisecond; ; delay = min(delay*2, 500*time.Millisecond) {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = cli.Ping(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("dockerd exited before it answered: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("dockerd not ready after 60s: %w", err)
		case <-time.After(delay):
		}
	}
}

// Client returns an Engine API client for this engine (API version negotiated); the test's
// cleanup closes it.
func (d *Docker) Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := d.client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func (d *Docker) client() (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return cli, nil
}

// PID returns dockerd's pid, or 0 when it is not running.
func (d *Docker) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || isDone(d.done) {
		return 0
	}
	return d.cmd.Process.Pid
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to dockerd (only dockerd: its containerd and the containers' shims go on
// running, as after a crash) and waits for it to exit.
func (d *Docker) Kill(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || isDone(d.done) {
		t.Fatalf("testservers: docker: Kill: dockerd is not running")
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	// dockerd's containerd dies with it. Until its zombie is reaped a restarted dockerd
	// believes it still runs (kill -0 succeeds) and waits for its socket in vain.
	pidFile := filepath.Join(d.execDir, "containerd", "containerd.pid")
	if pid := readPID(pidFile); pid > 1 {
		deadline := time.Now().Add(10 * time.Second)
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !processAlive(pid) {
			_ = os.Remove(pidFile)
		}
	}
}

func readPID(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Start starts dockerd again (after Kill) on the same roots, socket and bridge.
func (d *Docker) Start(t testing.TB) {
	t.Helper()
	if err := d.start(); err != nil {
		t.Fatalf("testservers: docker: restart: %v\n--- dockerd log ---\n%s", err, tail(d.logPath, 8<<10))
	}
}

// cleanup removes the containers, stops dockerd (SIGTERM, SIGKILL after 20s), stops the
// containerd it left (by the pid in its pidfile), unmounts what is left under the roots and
// deletes the bridge.
func (d *Docker) cleanup(t testing.TB) {
	if d.PID() != 0 {
		if cli, err := d.client(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if cs, err := cli.ContainerList(ctx, container.ListOptions{All: true}); err == nil {
				for _, c := range cs {
					_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
				}
			}
			cancel()
			cli.Close()
		}
		d.mu.Lock()
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			t.Logf("testservers: docker: dockerd (pid %d) still running 20s after SIGTERM; SIGKILL", d.cmd.Process.Pid)
			_ = d.cmd.Process.Signal(syscall.SIGKILL)
			<-d.done
		}
		d.mu.Unlock()
	}
	// containerd (started by dockerd) normally exits with it; after a Kill it may be left.
	if pid := readPID(filepath.Join(d.execDir, "containerd", "containerd.pid")); pid > 1 && processAlive(pid) && comm(pid) == "containerd" {
		stopPID(pid)
	}
	// Shims (and their containers) of this engine that outlived it, found by the socket
	// address on their command line.
	for _, pid := range shimsOf(d.execDir) {
		for _, c := range childrenOf(pid) {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		stopPID(pid)
	}
	for _, m := range mountsUnder(filepath.Dir(d.dataDir)) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Logf("testservers: docker: umount %s: %v", m, err)
		}
	}
	if out, err := exec.Command("ip", "link", "del", d.Bridge).CombinedOutput(); err != nil {
		t.Logf("testservers: docker: ip link del %s: %v: %s", d.Bridge, err, out)
	}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// stopPID sends SIGTERM, then SIGKILL after 10s.
func stopPID(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if processAlive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// shimsOf lists the containerd shims whose -address lies under execDir.
func shimsOf(execDir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !strings.HasPrefix(comm(pid), "containerd-shim") || !processAlive(pid) {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(b, []byte(execDir+"/")) {
			out = append(out, pid)
		}
	}
	return out
}

func childrenOf(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, w := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(w); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := strings.ReplaceAll(fields[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

var (
	webOnce sync.Once
	webBin  []byte
	webErr  error
)

// WebImage builds (once per test binary) a static Go HTTP server, imports it as image ref
// (e.g. "team/web:v1") into this engine with the given EXPOSE ports ("8080/tcp", "53/udp")
// and returns ref. The server (internal/testservers/webserver) answers "<hostname>\n" on
// every TCP port in $PORTS (default 8080) and echoes on every UDP port in $UDP_PORTS; with
// $EXIT_AFTER set it exits after that duration with $EXIT_CODE; with $UNHEALTHY_AFTER it
// answers 503 from then on.
func (d *Docker) WebImage(t testing.TB, ref string, expose ...string) string {
	t.Helper()
	webOnce.Do(func() {
		dir, err := os.MkdirTemp("", "webserver-")
		if err != nil {
			webErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "server")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/reconf/reconf/internal/testservers/webserver")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			webErr = fmt.Errorf("build webserver: %v: %s", err, o)
			return
		}
		webBin, webErr = os.ReadFile(out)
	})
	if webErr != nil {
		t.Fatalf("testservers: %v", webErr)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	} {
		_ = tw.WriteHeader(h)
	}
	_ = tw.WriteHeader(&tar.Header{Name: "server", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(webBin))})
	_, _ = tw.Write(webBin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	changes := []string{`CMD ["/server"]`}
	for _, e := range expose {
		changes = append(changes, "EXPOSE "+e)
	}
	cli := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		t.Fatalf("testservers: docker import %s: %v", ref, err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	return ref
}
