package register

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/consul"
	_ "github.com/reconf/reconf/backends/etcd"
	_ "github.com/reconf/reconf/backends/redis"
	_ "github.com/reconf/reconf/backends/zookeeper"
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/internal/testservers"
)

// storeCase is one backend with its real server.
type storeCase struct {
	backend string
	start   func(testing.TB) *testservers.Server
	ttl     time.Duration // ZooKeeper cannot go below 2×tickTime (4s)
}

func storeCases() []storeCase {
	return []storeCase{
		{backend: "etcd", start: testservers.Etcd, ttl: 2 * time.Second},
		{backend: "consul", start: testservers.Consul, ttl: 2 * time.Second},
		{backend: "zookeeper", start: testservers.ZooKeeper, ttl: 4 * time.Second},
		{backend: "redis", start: testservers.Redis, ttl: 2 * time.Second},
	}
}

func TestRegisterWithRealStores(t *testing.T) {
	if testing.Short() {
		t.Skip("real servers: not in -short")
	}
	for _, sc := range storeCases() {
		t.Run(sc.backend, func(t *testing.T) { testStore(t, sc) })
	}
}

// instance is a tiny HTTP service whose /health can be turned off.
type instance struct {
	srv     *httptest.Server
	healthy atomic.Bool
}

func newInstance(t *testing.T) *instance {
	in := &instance{}
	in.healthy.Store(true)
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !in.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *instance) port() int {
	var p int
	fmt.Sscanf(in.srv.URL[strings.LastIndex(in.srv.URL, ":")+1:], "%d", &p)
	return p
}

// waitFor polls until the instance's presence in discovery is want, and returns how long it took.
func waitFor(t *testing.T, d *discovery.Discovery, id string, want bool, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	var last error
	for {
		svcs, err := d.Service(context.Background(), "web", "", "")
		if err == nil {
			found := false
			for _, s := range svcs {
				if s.ID == id {
					found = true
				}
			}
			if found == want {
				return time.Since(start)
			}
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: instance %s present=%v not reached within %v (last error: %v)", what, id, want, within, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testStore(t *testing.T, sc storeCase) {
	srv := sc.start(t)
	b, err := backends.New(sc.backend, backends.Options{Nodes: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	d := discovery.New(b, discovery.Config{})
	in := newInstance(t)
	const interval, failures = 200 * time.Millisecond, 2
	args := []string{"register", "-backend", sc.backend, "-node", srv.Addr, "-service", "web", "-id", "web-1",
		"-address", "127.0.0.1", "-port", fmt.Sprint(in.port()), "-tag", "v1", "-meta", "zone=a",
		"-check", in.srv.URL + "/health", "-interval", interval.String(), "-timeout", "500ms",
		"-failures", fmt.Sprint(failures), "-ttl", sc.ttl.String()}
	c, err := Parse(args, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- Run(ctx, c, log) }()
	t.Cleanup(func() { cancel(); <-done })

	took := waitFor(t, d, "web-1", true, 10*time.Second, "register")
	t.Logf("%s: registered instance visible after %v", sc.backend, took.Round(time.Millisecond))
	svcs, _ := d.Service(context.Background(), "web", "v1", "")
	if len(svcs) != 1 || svcs[0].Address != "127.0.0.1" || svcs[0].Port != in.port() || svcs[0].Meta["zone"] != "a" {
		t.Fatalf("discovered %+v", svcs)
	}

	// Failing check: gone within interval×failures plus slack (one check timeout, a poll).
	in.healthy.Store(false)
	took = waitFor(t, d, "web-1", false, interval*failures+2*time.Second, "failing check")
	t.Logf("%s: failing instance gone after %v", sc.backend, took.Round(time.Millisecond))
	in.healthy.Store(true)
	took = waitFor(t, d, "web-1", true, interval+2*time.Second, "check passes again")
	t.Logf("%s: recovered instance back after %v", sc.backend, took.Round(time.Millisecond))

	// SIGTERM/SIGINT (here: ctx) deregisters at once.
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the cleanup
	waitFor(t, d, "web-1", false, 2*time.Second, "deregistered on stop")

	// The process dies without deregistering: the TTL takes it away.
	helperArgs := append([]string(nil), args...)
	for i, a := range helperArgs {
		if a == "web-1" {
			helperArgs[i] = "web-2"
		}
	}
	cmd := startHelper(t, helperArgs)
	waitFor(t, d, "web-2", true, 10*time.Second, "helper registered")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	took = waitFor(t, d, "web-2", false, sc.ttl+5*time.Second, "expired after the process died")
	t.Logf("%s: instance of a killed registrar expired after %v (ttl %v)", sc.backend, took.Round(time.Millisecond), sc.ttl)
	if time.Since(killed) < sc.ttl/4 {
		t.Errorf("instance vanished %v after the kill: before its TTL %v could run out (was it deregistered?)", took, sc.ttl)
	}

	// SIGTERM to the process deregisters and exits 0.
	cmd = startHelper(t, helperArgs)
	waitFor(t, d, "web-2", true, 10*time.Second, "helper registered again")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper after SIGTERM: %v, want exit 0", err)
	}
	waitFor(t, d, "web-2", false, time.Second, "deregistered on SIGTERM")

	// `reconf deregister` removes an instance whose registrar died, before its TTL would.
	for i, a := range helperArgs {
		if a == "web-2" {
			helperArgs[i] = "web-3"
		}
	}
	cmd = startHelper(t, helperArgs)
	waitFor(t, d, "web-3", true, 10*time.Second, "third registered")
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	dc, err := Parse([]string{"deregister", "-backend", sc.backend, "-node", srv.Addr, "-service", "web", "-id", "web-3"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), dc, log); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	waitFor(t, d, "web-3", false, sc.ttl/2, "deregistered by `reconf deregister`")
	// Deregistering what is not there is not an error.
	if err := Run(context.Background(), dc, log); err != nil {
		t.Fatalf("deregister again: %v", err)
	}

	// The store restarts (Redis and the Consul dev agent lose everything; etcd and ZooKeeper
	// keep it): the registrar puts its instance back by itself.
	for i, a := range helperArgs {
		if a == "web-3" {
			helperArgs[i] = "web-4"
		}
	}
	cmd = startHelper(t, helperArgs)
	waitFor(t, d, "web-4", true, 10*time.Second, "fourth registered")
	srv.Stop(t)
	srv.Start(t)
	took = waitFor(t, d, "web-4", true, 30*time.Second, "back after the store restarted")
	t.Logf("%s: instance present %v after the store came back", sc.backend, took.Round(time.Millisecond))
	if sc.backend == "redis" || sc.backend == "consul" {
		// Make sure it is really there again, not a stale read.
		time.Sleep(2 * interval)
		waitFor(t, d, "web-4", true, time.Second, "still there")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper after SIGTERM: %v", err)
	}
}

func startHelper(t *testing.T, args []string) *exec.Cmd {
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// TestRegisterSRV: -srv-domain finds the store through a real DNS server (dnsmasq) and
// replaces -node, on every store.
func TestRegisterSRV(t *testing.T) {
	if testing.Short() {
		t.Skip("real servers: not in -short")
	}
	for _, sc := range storeCases() {
		t.Run(sc.backend, func(t *testing.T) {
			srv := sc.start(t)
			dns := testservers.DNS(t, testservers.SRV{Name: "_" + sc.backend + "._tcp." + testservers.DNSDomain,
				Target: "localhost", Port: srv.Port(), Priority: 1, Weight: 1})
			b, err := backends.New(sc.backend, backends.Options{Nodes: []string{srv.Addr}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			d := discovery.New(b, discovery.Config{})
			c, err := Parse([]string{"register", "-backend", sc.backend, "-node", "127.0.0.1:1",
				"-srv-domain", testservers.DNSDomain, "-service", "web", "-id", "web-srv",
				"-address", "127.0.0.1", "-port", "8080", "-ttl", sc.ttl.String()}, os.Stderr)
			if err != nil {
				t.Fatal(err)
			}
			c.Options.Resolver = testservers.Resolver(dns)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Run(ctx, c, quietLog()) }()
			waitFor(t, d, "web-srv", true, 15*time.Second, "registered via SRV")
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			waitFor(t, d, "web-srv", false, 5*time.Second, "deregistered on stop")
		})
	}
}
