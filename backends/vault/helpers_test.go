package vault

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/goleak"

	"github.com/reconf/reconf/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the root client's pool (test helpers).
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mountKV enables a KV engine of version 1 or 2 at path (an existing mount is kept).
func mountKV(t testing.TB, rc *vaultapi.Client, path string, version int) {
	t.Helper()
	err := rc.Sys().MountWithContext(ctxT(t), path, &vaultapi.MountInput{
		Type: "kv", Options: map[string]string{"version": map[int]string{1: "1", 2: "2"}[version]},
	})
	if err != nil && !strings.Contains(err.Error(), "path is already in use") {
		t.Fatalf("mount %s: %v", path, err)
	}
}

// logSink collects a client's log lines (debug included) for the secret scan.
type logSink struct{ testutil.SyncBuffer }

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// secretScan records every secret a test uses and every error and log line it saw, and at the
// end fails if any secret shows in them.
type secretScan struct {
	mu      sync.Mutex
	secrets []string
	seen    []string
	logs    *logSink
}

func newScan(t *testing.T) *secretScan {
	s := &secretScan{logs: &logSink{}}
	t.Cleanup(func() { s.check(t) })
	return s
}

func (s *secretScan) secret(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, v...)
}

// err records an error's text and returns the error.
func (s *secretScan) err(err error) error {
	if err != nil {
		s.mu.Lock()
		s.seen = append(s.seen, err.Error())
		s.mu.Unlock()
	}
	return err
}

func (s *secretScan) check(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := strings.Join(s.seen, "\n") + "\n" + s.logs.String()
	for _, sec := range s.secrets {
		if sec != "" && strings.Contains(text, sec) {
			t.Errorf("a secret (%d bytes, starting %q) shows in an error or log line", len(sec), sec[:min(3, len(sec))])
		}
	}
	if testing.Verbose() {
		t.Logf("secret scan: %d secrets, %d errors, %d bytes of log", len(s.secrets), len(s.seen), len(s.logs.String()))
	}
}

// client returns a vault backend client for v with the scan's logger.
func client(t testing.TB, s *secretScan, cfg Config) *Client {
	t.Helper()
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	cfg.ReloginBackoff = 500 * time.Millisecond
	cfg.Logger = s.logs.logger()
	c, err := New(cfg)
	must(t, s.err(err))
	t.Cleanup(func() { c.Close() })
	return c
}

// get calls Get and records its error for the scan.
func (s *secretScan) get(t testing.TB, c *Client, prefixes ...string) (map[string]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := c.Get(ctx, prefixes)
	return kv, s.err(err)
}

func (s *secretScan) mustGet(t testing.TB, c *Client, prefixes ...string) map[string]string {
	t.Helper()
	kv, err := s.get(t, c, prefixes...)
	if err != nil {
		t.Fatalf("Get(%q): %v", prefixes, err)
	}
	return kv
}

func wantKV(t testing.TB, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %q (present %v), want %q", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s", k)
		}
	}
}
