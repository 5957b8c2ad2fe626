package consul

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// storeClient is the test's own Consul client. It keeps no idle connections, so it leaves no
// goroutines behind for the leak checks.
func storeClient(t testing.TB, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, Transport: &http.Transport{DisableKeepAlives: true}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// retry runs op for up to 20s while it fails (the agent may just have been restarted).
func retry(t testing.TB, what string, op func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := op()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func put(t testing.TB, c *api.Client, key, value string) {
	t.Helper()
	retry(t, "put "+key, func() error {
		_, err := c.KV().Put(&api.KVPair{Key: strings.TrimPrefix(key, "/"), Value: []byte(value)}, nil)
		return err
	})
}

func del(t testing.TB, c *api.Client, key string) {
	t.Helper()
	retry(t, "delete "+key, func() error {
		_, err := c.KV().Delete(strings.TrimPrefix(key, "/"), nil)
		return err
	})
}

func newClient(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := New(Config{Address: addr, Logger: quiet, WaitTime: 10 * time.Second, BackoffMax: time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	backendtest.Run(t, backendtest.Harness{
		New:    func(t *testing.T) backends.Backend { return newClient(t, srv.Addr) },
		Put:    func(t *testing.T, k, v string) { put(t, st, k, v) },
		Delete: func(t *testing.T, k string) { del(t, st, k) },
		Stop:   func(t *testing.T) { srv.Stop(t) },
		Start:  func(t *testing.T) { srv.Start(t) },
	})
}

func TestFolders(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	put(t, st, "app/", "")           // a folder, as the UI makes it
	put(t, st, "app/db/", "")        // a folder
	put(t, st, "app/db", "real key") // and a real key of the same name: it wins
	put(t, st, "app/db/host", "h")
	kv, err := c.Get(context.Background(), []string{"/app"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/app": "", "/app/db": "real key", "/app/db/host": "h"}
	if len(kv) != len(want) {
		t.Errorf("Get(/app) = %q, want %q", kv, want)
	}
	for k, v := range want {
		if got, ok := kv[k]; !ok || got != v {
			t.Errorf("Get(/app)[%s] = %q (present %v), want %q", k, got, ok, v)
		}
	}
}

func TestACL(t *testing.T) {
	srv := testservers.Consul(t)
	c, err := New(Config{Address: srv.Addr, Logger: quiet, Token: "not-a-real-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A dev agent has ACLs off, so any token reads; what matters is that it is sent and never
	// shows in an error. Point the client at a closed port to get an error.
	_, err = c.Get(context.Background(), []string{"/x"})
	if err != nil {
		t.Fatalf("Get with a token on a dev agent: %v", err)
	}
	bad, err := New(Config{Address: "127.0.0.1:1", Logger: quiet, Token: "not-a-real-token",
		BasicAuth: true, Username: "u", Password: "secret-password", RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Get(context.Background(), []string{"/x"})
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get from a closed port: %v, want backends.ErrUnavailable", err)
	}
	if err != nil && (strings.Contains(err.Error(), "secret-password") || strings.Contains(err.Error(), "not-a-real-token")) {
		t.Errorf("error shows a secret: %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error does not name the node: %v", err)
	}
}

func TestRegistered(t *testing.T) {
	b, err := backends.New("consul", backends.Options{})
	if err != nil {
		t.Fatalf("backends.New: %v", err)
	}
	defer b.Close()
	if _, ok := b.(backends.Watcher); !ok {
		t.Errorf("%T is not a backends.Watcher", b)
	}
	if _, ok := b.(backends.Discoverer); !ok {
		t.Errorf("%T is not a backends.Discoverer", b)
	}
	if _, ok := b.(interface {
		WatchService(ctx context.Context, name, tag, dc string, changed chan<- struct{}) error
	}); !ok {
		t.Errorf("%T has no WatchService", b)
	}
}

func TestConfig(t *testing.T) {
	t.Setenv("CONSUL_HTTP_TOKEN", "from-env")
	cfg, err := FromOptions(context.Background(), backends.Options{Nodes: []string{"https://consul.local:8501", "other:8500"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token != "from-env" {
		t.Errorf("token = %q, want the one from CONSUL_HTTP_TOKEN", cfg.Token)
	}
	d := cfg.withDefaults()
	if d.Address != "consul.local:8501" || d.Scheme != "https" {
		t.Errorf("address, scheme = %q, %q; want consul.local:8501, https", d.Address, d.Scheme)
	}
	cfg, _ = FromOptions(context.Background(), backends.Options{AuthToken: "flag"})
	if cfg.Token != "flag" || cfg.withDefaults().Address != DefaultNode {
		t.Errorf("token, address = %q, %q; want flag, %s", cfg.Token, cfg.withDefaults().Address, DefaultNode)
	}
	if got := cfg.withDefaults().ProbeInterval; got != DefaultProbeInterval {
		t.Errorf("default probe interval %v, want %v", got, DefaultProbeInterval)
	}
	if cfg, _ = FromOptions(context.Background(), backends.Options{ProbeInterval: 10 * time.Second}); cfg.withDefaults().ProbeInterval != 10*time.Second {
		t.Errorf("-probe-interval 10s: %v", cfg.withDefaults().ProbeInterval)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		bad  string
	}{
		{"defaults", Config{}, ""},
		{"bad node", Config{Address: "nohost"}, "want host:port"},
		{"bad scheme", Config{Scheme: "ftp"}, "want http or https"},
		{"basic auth without user", Config{BasicAuth: true}, "needs a username"},
		{"cert without key", Config{CertFile: "/etc/hostname"}, "needs its key"},
		{"missing ca", Config{CAFile: "/nonexistent/ca.pem"}, "ca:"},
		{"negative probe interval", Config{ProbeInterval: -time.Second}, "probe interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Errorf("Validate = %v, want an error containing %q", err, tc.bad)
			case tc.bad != "" && !errors.Is(err, backends.ErrConfig):
				t.Errorf("Validate = %v, want it to wrap backends.ErrConfig", err)
			}
		})
	}
}

// A node written with credentials ("http://user:password@host:port") is refused without
// showing the password.
func TestConfigErrorHidesPassword(t *testing.T) {
	for _, node := range []string{"http://user:s3cretpw@consul.local:8500", ":s3cretpw@consul.local:8500"} {
		err := Config{Address: node}.Validate()
		if !errors.Is(err, backends.ErrConfig) {
			t.Errorf("Validate(%q) = %v, want backends.ErrConfig", node, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("Validate(%q): the error shows the password: %v", node, err)
		}
		if !strings.Contains(err.Error(), "consul.local:8500") {
			t.Errorf("Validate(%q): the error does not name the node: %v", node, err)
		}
	}
}
