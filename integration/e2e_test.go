package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/internal/testservers"
)

// Targets the runs assert (and log the measured figures of).
const (
	joinWithin  = time.Second                                      // a new instance gets traffic
	leaveWithin = regInterval + regTTL + time.Second               // a killed instance stops getting it
	minRate     = 200.0                                            // requests per second during churn
	changes     = 20                                               // membership changes under load
	loadRate    = 250                                              // requests per second sent
	settle      = 1500 * time.Millisecond                          // after a reload, old generations drain to ≤ 1
	drainWithin = 3*time.Second + 2*time.Second                    // worker_shutdown_timeout/hard-stop-after + slack
	reflect     = regInterval*regFailures + regTTL + 2*time.Second // a change shows in the rendered file
)

func TestNginxEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	dir := t.TempDir()
	etcd := testservers.Etcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + etcd.Addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	px := newNginx(t, dir, testservers.FreePort(t))
	for k, v := range map[string]string{"/nginx/listen": "127.0.0.1:" + strconv.Itoa(px.port), "/nginx/access_log": "off", "/nginx/connect_timeout": "500ms"} {
		if _, err := cli.Put(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	confdir := filepath.Join(dir, "confdir")
	toml := readFile(t, "../examples/nginx/conf.d/nginx.toml")
	writeFile(t, filepath.Join(confdir, "conf.d", "nginx.toml"), withDestAndReload(t, toml, px, dir))
	writeFile(t, filepath.Join(confdir, "templates", "web.conf.tmpl"), readFile(t, "../examples/nginx/templates/web.conf.tmpl"))
	scenario(t, dir, confdir, px, "etcd", etcd.Addr)
}

func TestHaproxyConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	dir := t.TempDir()
	consul := testservers.Consul(t)
	cli, err := api.NewClient(&api.Config{Address: consul.Addr})
	if err != nil {
		t.Fatal(err)
	}
	px := newHaproxy(t, dir, testservers.FreePort(t))
	if _, err := cli.KV().Put(&api.KVPair{Key: "haproxy/port", Value: []byte(strconv.Itoa(px.port))}, nil); err != nil {
		t.Fatal(err)
	}
	confdir := filepath.Join(dir, "confdir")
	toml := `[template]
src = "haproxy.cfg.tmpl"
dest = "x"
keys = ["/haproxy"]
check_cmd = "haproxy -c -q -f {{.src}}"
reload_cmd = "x"
`
	writeFile(t, filepath.Join(confdir, "conf.d", "haproxy.toml"), withDestAndReload(t, toml, px, dir))
	writeFile(t, filepath.Join(confdir, "templates", "haproxy.cfg.tmpl"), readFile(t, "testdata/haproxy.cfg.tmpl"))
	scenario(t, dir, confdir, px, "consul", consul.Addr)
}

var (
	destLine   = regexp.MustCompile(`(?m)^dest = .*$`)
	reloadLine = regexp.MustCompile(`(?m)^reload_cmd = .*$`)
)

// withDestAndReload points a resource at the proxy's file and makes its reload fail on demand:
// while dir/FAULT exists the reload touches dir/ATTEMPTED and exits 1.
func withDestAndReload(t *testing.T, toml string, px *proxy, dir string) string {
	t.Helper()
	if !destLine.MatchString(toml) || !reloadLine.MatchString(toml) {
		t.Fatalf("resource lacks dest or reload_cmd:\n%s", toml)
	}
	toml = destLine.ReplaceAllLiteralString(toml, fmt.Sprintf("dest = %q", px.dest))
	reload := fmt.Sprintf("reload_cmd = '''\nif test -e %[1]s/FAULT; then touch %[1]s/ATTEMPTED; echo injected reload failure >&2; exit 1; fi\n%[2]s\n'''", dir, px.reload)
	return reloadLine.ReplaceAllLiteralString(toml, reload)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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

// rendered reports whether the proxy's file lists the backend's traffic port.
func rendered(px *proxy, b *backend) bool {
	cfg, _ := os.ReadFile(px.dest)
	return strings.Contains(string(cfg), ":"+strconv.Itoa(b.port))
}

func scenario(t *testing.T, dir, confdir string, px *proxy, store, node string) {
	common := []string{"-backend", store, "-node", node, "-confdir", confdir, "-config-file", filepath.Join(dir, "none.toml")}
	var fleet []*backend
	regs := map[string]*proc{}
	add := func(id string) *backend {
		b := newBackend(t, id)
		fleet = append(fleet, b)
		regs[id] = registrar(t, dir, store, node, b)
		return b
	}
	for i := 1; i <= 3; i++ {
		add(fmt.Sprintf("web-%d", i))
	}

	// Render once without commands, start the proxy on that, then watch.
	eventually(t, 10*time.Second, "three instances registered", func() bool {
		_, err := execCombined(reconfBin, append(common, "-onetime", "-sync-only")...)
		return err == nil && rendered(px, fleet[0]) && rendered(px, fleet[1]) && rendered(px, fleet[2])
	})
	px.start()
	t.Cleanup(func() { stopProxy(t, px, syscall.SIGTERM) })
	waitMaster(t, px)
	rc := start(t, dir, "reconf", reconfBin, append(common, "-watch", "-log-level", "debug")...)
	defer func() {
		if t.Failed() || os.Getenv("RECONF_E2E_LOGS") != "" {
			t.Log(rc.tail(400))
		}
	}()

	// Requests through the proxy reach all three.
	got, err := probe(px.url(), 30)
	if err != nil || len(got) != 3 {
		t.Fatalf("through %s: %v, %v; want all three backends", px.name, got, err)
	}

	ld := startLoad(px.url(), loadRate, 10, 3*time.Minute)
	defer ld.stop()

	// A fourth instance gets traffic within joinWithin of its registrar starting.
	t0 := time.Now()
	b4 := add("web-4")
	eventually(t, 10*time.Second, "web-4 gets traffic", func() bool { return !ld.seen(b4.id).IsZero() })
	join := ld.seen(b4.id).Sub(t0)
	if os.Getenv("RECONF_E2E_LOGS") != "" {
		t.Logf("web-4 registrar started at %s\n%s", t0.UTC().Format("15:04:05.000"), regs[b4.id].tail(5))
	}
	t.Logf("%s/%s: a new instance got traffic %v after `reconf register` started (target %v)", px.name, store, join.Round(time.Millisecond), joinWithin)
	if join > joinWithin {
		t.Errorf("web-4 got traffic after %v, want ≤ %v", join, joinWithin)
	}

	// A host dies (the instance and its registrar): no traffic within interval + TTL + 1s.
	victim := fleet[1]
	tk := time.Now()
	victim.kill()
	regs[victim.id].stop(t, syscall.SIGKILL, 5*time.Second)
	gone := eventually(t, reflect+5*time.Second, "the dead instance leaves the config", func() bool { return !rendered(px, victim) })
	eventually(t, 10*time.Second, "the dead instance gets no more traffic", func() bool {
		return time.Since(time.Unix(0, victim.lastHit.Load())) > time.Second
	})
	leave := max(time.Unix(0, victim.lastHit.Load()).Sub(tk), 0) // 0: nothing after the kill
	t.Logf("%s/%s: a killed instance (registrar killed too) left the config %v after the kill (TTL %v) and got its last request %v after it (target %v; %d requests dropped and retried by the proxy)",
		px.name, store, gone.Round(time.Millisecond), regTTL, leave.Round(time.Millisecond), leaveWithin, victim.dropped.Load())
	if leave > leaveWithin {
		t.Errorf("the killed instance got traffic until %v after the kill, want ≤ %v", leave, leaveWithin)
	}

	// Twenty membership changes under load: joins, graceful leaves, crashes. A sampler
	// records the most worker generations alive at once (reloads come faster than old
	// workers drain here, so this is informational; the bound is checked once settled).
	peak := make(chan int, 1)
	stopSampling := make(chan struct{})
	go func() {
		most := 0
		for {
			select {
			case <-stopSampling:
				peak <- most
				return
			case <-time.After(50 * time.Millisecond):
				most = max(most, px.generations())
			}
		}
	}()
	live := []*backend{fleet[0], fleet[2], b4}
	var worst time.Duration
	for i := range changes {
		start := time.Now()
		switch {
		case i%2 == 0:
			b := add(fmt.Sprintf("web-%d", 5+i))
			live = append(live, b)
			eventually(t, reflect, b.id+" joins the config", func() bool { return rendered(px, b) })
		case i%4 == 1: // graceful: deregister, wait until the proxy forgot it, then stop
			b := live[0]
			live = live[1:]
			regs[b.id].stop(t, syscall.SIGTERM, 5*time.Second)
			if code := regs[b.id].exitCode(); code != 0 {
				t.Errorf("registrar of %s exited %d after SIGTERM, want 0", b.id, code)
			}
			eventually(t, reflect, b.id+" leaves the config", func() bool { return !rendered(px, b) })
			// The reload takes effect: no request has reached b for a while, counted from
			// when the config forgot it (the load reaches every instance many times a second).
			forgot := time.Now().UnixNano()
			eventually(t, reflect, b.id+" gets no more traffic", func() bool {
				return time.Since(time.Unix(0, max(forgot, b.lastHit.Load()))) > 200*time.Millisecond
			})
			b.stop()
		default: // crash: the registrar sees the check fail and takes it down
			b := live[0]
			live = live[1:]
			b.kill()
			eventually(t, reflect, b.id+" leaves the config after failed checks", func() bool { return !rendered(px, b) })
		}
		worst = max(worst, time.Since(start))
		time.Sleep(150 * time.Millisecond)
	}
	lastReload := time.Now()
	close(stopSampling)
	t.Logf("%s/%s: at most %d worker generations were alive at once during the changes", px.name, store, <-peak)
	t.Logf("%s/%s: %d membership changes, the slowest took %v to reach the config", px.name, store, changes, worst.Round(time.Millisecond))

	// Reload hygiene: after a reload settles at most one old generation drains, then none.
	time.Sleep(time.Until(lastReload.Add(settle)))
	g := px.generations()
	if g > 2 {
		t.Errorf("%s has %d worker generations %v after the last reload, want ≤ 2", px.name, g, settle)
	}
	drained := eventually(t, drainWithin, "old generations drained", func() bool { return px.generations() == 1 })
	t.Logf("%s/%s: %d worker generation(s) %v after the last reload; only the current one after %v",
		px.name, store, g, settle, (settle + drained).Round(time.Millisecond))

	// A reload that fails is rolled back and the proxy keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "FAULT"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, px.dest)
	bf := add("web-fault")
	eventually(t, reflect, "the faulty reload was attempted", func() bool {
		_, err := os.Stat(filepath.Join(dir, "ATTEMPTED"))
		return err == nil
	})
	eventually(t, 5*time.Second, "the previous file is back", func() bool { return readFile(t, px.dest) == before })
	if got, err := probe(px.url(), 20); err != nil || got[bf.id] > 0 {
		t.Errorf("after a failed reload: %v, %v; want the old set serving", got, err)
	}
	os.Remove(filepath.Join(dir, "FAULT"))
	eventually(t, 20*time.Second, "the instance joins once reloads work again", func() bool { return !ld.seen(bf.id).IsZero() })

	ld.stop()
	total, fails, rate := ld.summary()
	t.Logf("%s/%s: %d requests at %.0f req/s through %d membership changes and a failed reload: %d failed",
		px.name, store, total, rate, changes+2, len(fails))
	if len(fails) > 0 {
		t.Errorf("%d failed requests, want 0; first: %v", len(fails), fails[:min(5, len(fails))])
	}
	if rate < minRate {
		t.Errorf("load ran at %.0f req/s, want ≥ %.0f", rate, minRate)
	}
}
