package zookeeper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet keeps go-zookeeper's debug chatter out of test output (RECONF_TEST_DEBUG=1 shows it).
var quiet = func() *slog.Logger {
	if os.Getenv("RECONF_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

// store is the test's own ZooKeeper client: it writes and deletes as a user of zkCli would.
type store struct {
	conn *zk.Conn
}

func newStore(t testing.TB, addr string) *store {
	t.Helper()
	ss, err := dial(Config{Nodes: []string{addr}, Logger: quiet}.withDefaults(), nil, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	t.Cleanup(ss.close)
	return &store{conn: ss.conn}
}

// retry runs op until it succeeds or fails with something other than a lost connection
// (the server may just have been restarted), for at most 20s.
func retry(t testing.TB, what string, op func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := op()
		if err == nil {
			return
		}
		if !lostConn(err) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// put writes key = value, creating missing parents with no data.
func (s *store) put(t testing.TB, key, value string) {
	t.Helper()
	retry(t, "put "+key, func() error {
		_, err := s.conn.Set(key, []byte(value), -1)
		if !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		parts := strings.Split(key, "/")[1:]
		for i := 1; i < len(parts); i++ {
			p := "/" + strings.Join(parts[:i], "/")
			if _, err := s.conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return err
			}
		}
		_, err = s.conn.Create(key, []byte(value), 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			_, err = s.conn.Set(key, []byte(value), -1)
		}
		return err
	})
}

// del deletes key and then each parent left with neither data nor children: in ZooKeeper a
// folder is a node, and an empty leaf would read as a key with an empty value, as in confd.
func (s *store) del(t testing.TB, key string) {
	t.Helper()
	retry(t, "delete "+key, func() error {
		if err := s.conn.Delete(key, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		for p := parent(key); p != "/"; p = parent(p) {
			data, stat, err := s.conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			if len(data) > 0 || stat.NumChildren > 0 {
				return nil
			}
			if err := s.conn.Delete(p, stat.Version); err != nil && !errors.Is(err, zk.ErrNotEmpty) &&
				!errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrBadVersion) {
				return err
			}
		}
		return nil
	})
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func newClient(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := New(Config{Nodes: []string{addr}, Logger: quiet, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	backendtest.Run(t, backendtest.Harness{
		New:    func(t *testing.T) backends.Backend { return newClient(t, srv.Addr) },
		Put:    func(t *testing.T, k, v string) { st.put(t, k, v) },
		Delete: func(t *testing.T, k string) { st.del(t, k) },
		Stop:   func(t *testing.T) { srv.Stop(t) },
		Start:  func(t *testing.T) { srv.Start(t) },
	})
}

func TestRegistered(t *testing.T) {
	b, err := backends.New("zookeeper", backends.Options{Nodes: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatalf("backends.New: %v", err)
	}
	if _, ok := b.(backends.Watcher); !ok {
		t.Errorf("%T is not a backends.Watcher", b)
	}
	b.Close()
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		bad  string // substring of the error; "" means valid
	}{
		{"defaults", Config{}, ""},
		{"port added", Config{Nodes: []string{"zk1"}}, ""},
		{"bad port", Config{Nodes: []string{"zk1:99999"}}, "bad port"},
		{"no host", Config{Nodes: []string{":2181"}}, "want host:port"},
		{"too many colons", Config{Nodes: []string{"bad:node:x"}}, `node "bad:node:x": want host:port`},
		{"bare IPv6", Config{Nodes: []string{"::1"}}, ""},
		{"user without password", Config{Username: "u"}, "both username and password"},
		{"colon in user", Config{Username: "a:b", Password: "p"}, "must not contain"},
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
	if got := (Config{}).withDefaults().Nodes; len(got) != 1 || got[0] != DefaultNode {
		t.Errorf("default nodes = %q, want [%s]", got, DefaultNode)
	}
	if got := (Config{Nodes: []string{"zk1"}}).withDefaults().Nodes[0]; got != "zk1:2181" {
		t.Errorf("node without port = %q, want zk1:2181", got)
	}
	if got := (Config{Nodes: []string{"::1"}}).withDefaults().Nodes[0]; got != "[::1]:2181" {
		t.Errorf("IPv6 node without port = %q, want [::1]:2181", got)
	}
	cfg, err := FromOptions(context.Background(), backends.Options{Username: "u", Password: "secret", RequestTimeout: time.Second})
	if err != nil || cfg.Username != "u" || cfg.Password != "secret" || cfg.RequestTimeout != time.Second {
		t.Errorf("FromOptions = %+v, %v", cfg, err)
	}
}
