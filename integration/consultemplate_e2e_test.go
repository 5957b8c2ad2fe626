package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/internal/testservers"
)

// Targets of TestConsulTemplateNginx.
const (
	ctJoinWithin = 2 * time.Second  // a new instance gets traffic through nginx
	ctLoadRate   = 200              // requests per second sent through nginx
	ctMinRate    = 180.0            // requests per second measured
	ctReflect    = 10 * time.Second // a catalog change shows in the rendered files
	ctOnceLimit  = 20 * time.Second // a -once run exits
)

// ctExample is the example the test runs: examples/consul-template.
const ctExample = "../examples/consul-template"

// TestConsulTemplateNginx runs examples/consul-template as its README says, on reconf in
// consul-template mode (`reconf -config config.hcl`), against a real Consul agent and a real
// nginx. The example's files are used as shipped; only paths, the Consul address and nginx's
// listen port (and what a test nginx needs: user, temp paths) are adapted.
//
// It checks that the example renders byte for byte what consul-template v0.42.1 renders from
// the same agent (-once, both), that a client sending ~200 req/s through nginx sees no failed
// request while instances of "nginx" are registered and deregistered through the agent API,
// that a new instance gets traffic within ctJoinWithin, that a deregistered instance stops
// getting traffic before its server is stopped, that a service without a healthy instance
// renders the "force a 502" upstream, and that a render nginx -t rejects (check_command) leaves
// the live file untouched and nginx serving.
func TestConsulTemplateNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	ctBin := testservers.ConsulTemplateBinary(t)
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatalf("nginx is required (apt-get install nginx): %v", err)
	}
	dir := t.TempDir()
	consul := testservers.Consul(t)
	cli, err := api.NewClient(&api.Config{Address: consul.Addr})
	if err != nil {
		t.Fatal(err)
	}
	agent := cli.Agent()

	// nginx's files: PREFIX/nginx.conf (nginx.ctmpl) includes PREFIX/conf.d/services.conf
	// (services.ctmpl).
	prefix := filepath.Join(dir, "nginx") + "/"
	for _, d := range []string{"conf.d", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	px := &proxy{
		name:    "nginx",
		port:    testservers.FreePort(t),
		dest:    filepath.Join(prefix, "nginx.conf"),
		pidFile: filepath.Join(prefix, "nginx.pid"),
	}
	servicesConf := filepath.Join(prefix, "conf.d", "services.conf")
	tmpls := filepath.Join(dir, "templates")
	writeFile(t, filepath.Join(tmpls, "services.ctmpl"), readFile(t, filepath.Join(ctExample, "services.ctmpl")))
	writeFile(t, filepath.Join(tmpls, "nginx.ctmpl"), adaptNginxTemplate(t, readFile(t, filepath.Join(ctExample, "nginx.ctmpl")), prefix, px.port))
	px.reload = fmt.Sprintf("%s -s reload -p %s -c %s", nginxBin, prefix, px.dest)
	hcl := readFile(t, filepath.Join(ctExample, "config.hcl"))
	liveHCL := filepath.Join(dir, "config.hcl")
	writeFile(t, liveHCL, adaptConfig(t, hcl, consul.Addr, tmpls, prefix, px.reload))

	// Three instances of "nginx", a service whose only instance is critical, and one that is
	// not "nginx" (its own upstream in services.conf).
	var fleet []*backend
	register := func(id, name string, check *api.AgentServiceCheck) *backend {
		t.Helper()
		b := newBackend(t, id)
		if err := agent.ServiceRegister(&api.AgentServiceRegistration{
			ID: id, Name: name, Address: "127.0.0.1", Port: b.port, Tags: []string{"e2e"}, Check: check,
		}); err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
		return b
	}
	addNginx := func(id string) *backend {
		t.Helper()
		b := register(id, "nginx", nil)
		fleet = append(fleet, b)
		return b
	}
	for i := 1; i <= 3; i++ {
		addNginx(fmt.Sprintf("web-%d", i))
	}
	register("api-1", "api", nil)
	register("empty-1", "empty", &api.AgentServiceCheck{CheckID: "empty-ttl", TTL: "10m", Status: api.HealthCritical})
	waitHealthy(t, cli, "nginx", 3)
	waitHealthy(t, cli, "api", 1)

	// 1. -once, reconf and consul-template, on the same agent: the same bytes. reconf renders
	// the live files (running the example's checks, no command: nginx is not up yet);
	// consul-template renders a copy elsewhere from the example's config without reconf's
	// check_command (it rejects the key).
	oracle := filepath.Join(dir, "oracle") + "/"
	writeFile(t, filepath.Join(oracle, "conf.d", ".keep"), "")
	onceHCL := filepath.Join(dir, "once.hcl")
	writeFile(t, onceHCL, withoutCommands(t, adaptConfig(t, hcl, consul.Addr, tmpls, prefix, "")))
	ctHCL := filepath.Join(dir, "consul-template.hcl")
	writeFile(t, ctHCL, withoutChecks(t, withoutCommands(t, adaptConfig(t, hcl, consul.Addr, tmpls, oracle, ""))))
	if out, code := runOnce(t, reconfBin, "-once", "-config", onceHCL); code != 0 {
		t.Fatalf("reconf -once exited %d:\n%s", code, out)
	}
	if out, code := runOnce(t, ctBin, "-once", "-config", ctHCL); code != 0 {
		t.Fatalf("consul-template -once exited %d:\n%s", code, out)
	}
	for _, f := range []string{"nginx.conf", "conf.d/services.conf"} {
		got, want := readFile(t, filepath.Join(prefix, f)), readFile(t, filepath.Join(oracle, f))
		if got != want {
			t.Errorf("%s: reconf -once rendered\n%s\nconsul-template -once rendered\n%s", f, got, want)
		} else {
			t.Logf("%s: reconf -once and consul-template -once rendered the same %d bytes", f, len(got))
		}
	}
	if os.Getenv("RECONF_E2E_LOGS") != "" {
		t.Logf("services.conf:\n%s", readFile(t, servicesConf))
	}
	for _, b := range fleet {
		if !rendered(px, b) {
			t.Fatalf("nginx.conf lacks %s:\n%s", b.id, readFile(t, px.dest))
		}
	}
	// The service without a healthy instance gets consul-template's 502 upstream.
	force502 := regexp.MustCompile(`upstream empty \{\s+zone upstream-empty 64k;\s+server 127\.0\.0\.1:65535; # force a 502\s+\}`)
	if s := readFile(t, servicesConf); !force502.MatchString(s) || !strings.Contains(s, "upstream api {") {
		t.Fatalf("services.conf lacks the api upstream or the 502 upstream of empty:\n%s", s)
	}
	if t.Failed() {
		return
	}

	// 2. nginx on the rendered files, then reconf watching (consul-template's command line).
	run(t, nginxBin, "-p", prefix, "-c", px.dest)
	t.Cleanup(func() { stopProxy(t, px, syscall.SIGTERM) })
	waitMaster(t, px)
	rc := start(t, dir, "reconf", reconfBin, "-config", liveHCL, "-log-level", "debug")
	defer func() {
		if t.Failed() || os.Getenv("RECONF_E2E_LOGS") != "" {
			t.Log(rc.tail(200))
		}
	}()
	// Watching once its first pass found nothing to change.
	eventually(t, 10*time.Second, "reconf's first pass", func() bool {
		return strings.Contains(rc.output(), `msg="watch started"`)
	})
	if got, err := probe(px.url(), 30); err != nil || len(got) != 3 {
		t.Fatalf("through nginx: %v, %v; want the three instances", got, err)
	}

	ld := startLoad(px.url(), ctLoadRate, 10, 2*time.Minute)
	defer ld.stop()

	// 3. A new instance gets traffic within ctJoinWithin of its registration.
	t0 := time.Now()
	b4 := addNginx("web-4")
	eventually(t, ctReflect, "web-4 gets traffic", func() bool { return !ld.seen(b4.id).IsZero() })
	join := ld.seen(b4.id).Sub(t0)
	t.Logf("consul-template mode: a new instance got traffic %v after its registration (target %v)", join.Round(time.Millisecond), ctJoinWithin)
	if join > ctJoinWithin {
		t.Errorf("web-4 got traffic %v after its registration, want ≤ %v", join, ctJoinWithin)
	}

	// 4. Membership changes under load: joins, and leaves where the instance is deregistered,
	// nginx forgets it, and only then its server stops.
	leave := func(b *backend) {
		t.Helper()
		if err := agent.ServiceDeregister(b.id); err != nil {
			t.Fatalf("deregister %s: %v", b.id, err)
		}
		eventually(t, ctReflect, b.id+" leaves nginx.conf", func() bool { return !rendered(px, b) })
		forgot := time.Now().UnixNano()
		eventually(t, ctReflect, b.id+" gets no more traffic", func() bool {
			return time.Since(time.Unix(0, max(forgot, b.lastHit.Load()))) > 300*time.Millisecond
		})
		b.stop()
	}
	live := []*backend{fleet[0], fleet[1], fleet[2], b4}
	for i := range 6 {
		if i%2 == 0 {
			b := addNginx(fmt.Sprintf("web-%d", 5+i))
			live = append(live, b)
			eventually(t, ctReflect, b.id+" gets traffic", func() bool { return !ld.seen(b.id).IsZero() })
		} else {
			leave(live[0])
			live = live[1:]
		}
	}

	// 5. A render nginx -t rejects: an instance of "api" whose address is no address
	// ("127.0.0.1 bad-param" renders `server 127.0.0.1 bad-param:PORT …;`, an invalid
	// parameter to nginx; the host is an IP literal, so nginx -t resolves nothing). The check
	// fails on the staged file; services.conf keeps its inode and bytes, nginx keeps serving,
	// and once the instance is gone the next change goes through.
	before := readFile(t, servicesConf)
	st0, err := os.Stat(servicesConf)
	if err != nil {
		t.Fatal(err)
	}
	logBefore := len(rc.output())
	bad := newBackend(t, "api-bad")
	if err := agent.ServiceRegister(&api.AgentServiceRegistration{
		ID: "api-bad", Name: "api", Address: "127.0.0.1 bad-param", Port: bad.port,
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctReflect, "reconf reports the failed check", func() bool {
		return checkFailed.MatchString(rc.output()[logBefore:])
	})
	if got := readFile(t, servicesConf); got != before {
		t.Errorf("services.conf changed although nginx -t rejected the render:\n%s", got)
	}
	if st1, err := os.Stat(servicesConf); err != nil || !os.SameFile(st0, st1) || !st1.ModTime().Equal(st0.ModTime()) {
		t.Errorf("services.conf was replaced or touched although the check failed: %v", err)
	}
	if ents, _ := filepath.Glob(filepath.Join(prefix, "conf.d", ".services.conf*")); len(ents) > 0 {
		t.Errorf("staged files left behind: %v", ents)
	}
	if !alive(px.masterPID()) {
		t.Fatalf("nginx is down after the rejected render")
	}
	if err := agent.ServiceDeregister("api-bad"); err != nil {
		t.Fatal(err)
	}
	bn := addNginx("web-after-check")
	eventually(t, ctReflect, "an instance joins after the rejected render", func() bool { return !ld.seen(bn.id).IsZero() })
	// It stays in the rotation (and the load runs on through the last reload).
	eventually(t, ctReflect, bn.id+" serves 100 requests", func() bool {
		ld.mu.Lock()
		defer ld.mu.Unlock()
		return ld.count[bn.id] >= 100
	})
	if s := readFile(t, servicesConf); !force502.MatchString(s) || strings.Contains(s, "bad-param") {
		t.Errorf("services.conf after the bad service left:\n%s", s)
	}

	ld.stop()
	total, fails, rate := ld.summary()
	t.Logf("consul-template mode: %d requests at %.0f req/s through nginx, 8 membership changes and a rejected render: %d failed", total, rate, len(fails))
	if len(fails) > 0 {
		t.Errorf("%d failed requests, want 0; first: %v", len(fails), fails[:min(5, len(fails))])
	}
	if rate < ctMinRate {
		t.Errorf("load ran at %.0f req/s, want ≥ %.0f", rate, ctMinRate)
	}
}

// checkFailed matches reconf's report of a check_command that failed on services.conf.
var checkFailed = regexp.MustCompile(`services\.conf.*check_cmd failed.*invalid parameter.*bad-param`)

// runOnce runs a -once render to completion within ctOnceLimit (stopped by pid past it, which
// fails the test) with none of the machine's CONSUL_* or RECONF_* variables, and returns its
// output and exit code.
func runOnce(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	r := testservers.ConsulTemplateCmd{Binary: bin, Args: args, Timeout: ctOnceLimit}.Run(t)
	if r.TimedOut {
		t.Fatalf("%s %v still running after %v; stopped it\n%s%s", filepath.Base(bin), args, ctOnceLimit, r.Stdout, r.Stderr)
	}
	return r.Stdout + r.Stderr, r.Exit
}

// waitHealthy waits until Consul's health API lists n passing instances of service.
func waitHealthy(t *testing.T, cli *api.Client, service string, n int) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d passing instances of %s", n, service), func() bool {
		es, _, err := cli.Health().Service(service, "", true, nil)
		return err == nil && len(es) == n
	})
}

// replaceOnce replaces old, which must occur exactly once in s.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("the example has %q %d times, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// adaptNginxTemplate points the example's nginx.ctmpl at the test's prefix and port, and adds
// what an nginx started by a test needs (workers as root, temp paths under the prefix).
func adaptNginxTemplate(t *testing.T, s, prefix string, port int) string {
	t.Helper()
	s = replaceOnce(t, s, "\nworker_processes 1;\n", "\nuser root;\nworker_processes 1;\nworker_shutdown_timeout 3s;\n")
	s = replaceOnce(t, s, "\npid /run/nginx.pid;\n", "\npid "+prefix+"nginx.pid;\n")
	s = replaceOnce(t, s, "\nerror_log /var/log/nginx/error.log;\n", "\nerror_log "+prefix+"logs/error.log notice;\n")
	s = replaceOnce(t, s, "\n  access_log off;\n", fmt.Sprintf("\n  access_log off;\n  client_body_temp_path %[1]stmp/body;\n  proxy_temp_path %[1]stmp/proxy;\n  fastcgi_temp_path %[1]stmp/fastcgi;\n  uwsgi_temp_path %[1]stmp/uwsgi;\n  scgi_temp_path %[1]stmp/scgi;\n", prefix))
	s = replaceOnce(t, s, "\n    listen 80;\n", fmt.Sprintf("\n    listen 127.0.0.1:%d;\n", port))
	return replaceOnce(t, s, "\n  include /etc/nginx/conf.d/services.conf;\n", "\n  include "+prefix+"conf.d/services.conf;\n")
}

// adaptConfig points the example's config.hcl at the agent, the test's templates and an nginx
// prefix; reload replaces the command ("" keeps it, for withoutCommands to drop).
func adaptConfig(t *testing.T, s, consulAddr, tmpls, prefix, reload string) string {
	t.Helper()
	s = replaceOnce(t, s, `address = "127.0.0.1:8500"`, fmt.Sprintf("address = %q", consulAddr))
	s = replaceOnce(t, s, `"/etc/consul-template/services.ctmpl"`, strconv.Quote(filepath.Join(tmpls, "services.ctmpl")))
	s = replaceOnce(t, s, `"/etc/consul-template/nginx.ctmpl"`, strconv.Quote(filepath.Join(tmpls, "nginx.ctmpl")))
	s = replaceOnce(t, s, `"/etc/nginx/conf.d/services.conf"`, strconv.Quote(prefix+"conf.d/services.conf"))
	s = replaceOnce(t, s, `destination = "/etc/nginx/nginx.conf"`, fmt.Sprintf("destination = %q", prefix+"nginx.conf"))
	if reload != "" {
		if n := strings.Count(s, `command     = "nginx -s reload"`); n != 2 {
			t.Fatalf("config.hcl has the reload command %d times, want 2", n)
		}
		s = strings.ReplaceAll(s, `command     = "nginx -s reload"`, fmt.Sprintf("command     = %q", reload))
	}
	return s
}

var (
	commandLine  = regexp.MustCompile(`(?m)^\s*command\s*=.*\n`)
	checkLine    = regexp.MustCompile(`(?m)^\s*check_command\s*=\s*"[^\n]*\n`)
	checkHeredoc = regexp.MustCompile(`(?ms)^\s*check_command\s*=\s*<<EOT\n.*?^EOT\n`)
)

// withoutCommands drops the templates' commands (for the -once renders).
func withoutCommands(t *testing.T, s string) string {
	t.Helper()
	if n := len(commandLine.FindAllString(s, -1)); n != 2 {
		t.Fatalf("config.hcl has %d command lines, want 2", n)
	}
	return commandLine.ReplaceAllString(s, "")
}

// withoutChecks drops reconf's check_command, which consul-template rejects.
func withoutChecks(t *testing.T, s string) string {
	t.Helper()
	if len(checkHeredoc.FindAllString(s, -1)) != 1 || len(checkLine.FindAllString(s, -1)) != 1 {
		t.Fatalf("config.hcl: want one check_command heredoc (<<EOT) and one single-line check_command")
	}
	s = checkHeredoc.ReplaceAllString(s, "")
	s = checkLine.ReplaceAllString(s, "")
	if regexp.MustCompile(`(?m)^\s*check_`).MatchString(s) {
		t.Fatalf("check_command left in the consul-template config:\n%s", s)
	}
	return s
}
