package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proxy is a running nginx or haproxy whose configuration reconf renders.
type proxy struct {
	name    string
	port    int    // where clients connect
	dest    string // the file reconf renders and the proxy reads
	pidFile string // holds the master's pid
	reload  string // the reload command, for reload_cmd
	start   func() // starts the daemon once dest exists
}

func (p *proxy) url() string { return fmt.Sprintf("http://127.0.0.1:%d/", p.port) }

func (p *proxy) masterPID() int {
	b, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// generations counts the master's worker processes. Both proxies run one worker per
// generation (worker_processes 1; haproxy threads), so this is the current generation plus
// the old ones still draining.
func (p *proxy) generations() int {
	master := p.masterPID()
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(master) && pid != master {
			n++
		}
	}
	return n
}

// stopProxy stops the master by its pid and waits until it and its workers are gone.
func stopProxy(t *testing.T, p *proxy, sig syscall.Signal) {
	pid := p.masterPID()
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, sig)
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("%s master %d did not exit; killing it", p.name, pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func waitMaster(t *testing.T, p *proxy) {
	t.Helper()
	eventually(t, 10*time.Second, p.name+" started", func() bool { return alive(p.masterPID()) && p.generations() >= 1 })
}

// newNginx prepares nginx as a daemon (master and one worker) whose main config includes the
// rendered dest inside http {}.
func newNginx(t *testing.T, dir string, port int) *proxy {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatalf("nginx is required (apt-get install nginx): %v", err)
	}
	prefix := filepath.Join(dir, "nginx") + "/"
	for _, d := range []string{"conf.d", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &proxy{name: "nginx", port: port, dest: filepath.Join(prefix, "conf.d", "web.conf"), pidFile: filepath.Join(prefix, "nginx.pid")}
	main := filepath.Join(prefix, "nginx.conf")
	conf := fmt.Sprintf(`daemon on;
master_process on;
user root;
worker_processes 1;
worker_shutdown_timeout 3s;
pid %[1]snginx.pid;
error_log %[1]slogs/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]stmp/body;
    proxy_temp_path %[1]stmp/proxy;
    fastcgi_temp_path %[1]stmp/fastcgi;
    uwsgi_temp_path %[1]stmp/uwsgi;
    scgi_temp_path %[1]stmp/scgi;
    keepalive_timeout 10s;
    include %[2]s;
}
`, prefix, p.dest)
	if err := os.WriteFile(main, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.reload = fmt.Sprintf("%s -s reload -p %s -c %s", bin, prefix, main)
	p.start = func() { run(t, bin, "-p", prefix, "-c", main) }
	return p
}

// newHaproxy prepares haproxy in master-worker mode (-W -D) reading the rendered dest;
// reloads send USR2 to the master.
func newHaproxy(t *testing.T, dir string, port int) *proxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is required (apt-get install haproxy): %v", err)
	}
	hdir := filepath.Join(dir, "haproxy")
	if err := os.MkdirAll(hdir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &proxy{name: "haproxy", port: port, dest: filepath.Join(hdir, "haproxy.cfg"), pidFile: filepath.Join(hdir, "haproxy.pid")}
	p.reload = fmt.Sprintf("kill -USR2 $(cat %s)", p.pidFile)
	p.start = func() { run(t, bin, "-W", "-D", "-p", p.pidFile, "-f", p.dest) }
	return p
}
