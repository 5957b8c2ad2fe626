package testservers

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Etcd starts etcd and waits until it serves. Cleanup stops it.
func Etcd(t testing.TB) *Server {
	t.Helper()
	return etcd(t, EtcdTLS{})
}

// EtcdTLS holds the PEM files of an etcd serving clients over TLS.
type EtcdTLS struct {
	CertFile, KeyFile string // the server's certificate and key
	// ClientCAFile, when set, makes etcd require client certificates signed by it.
	ClientCAFile string
	// ProbeCert and ProbeKey are a client certificate the readiness probe presents (needed
	// with ClientCAFile).
	ProbeCert, ProbeKey string
}

// EtcdWithTLS starts etcd serving clients on https:// with the given certificates (peers stay
// on plain http). Server.Addr is host:port; dial it as https.
func EtcdWithTLS(t testing.TB, c EtcdTLS) *Server {
	t.Helper()
	if c.CertFile == "" || c.KeyFile == "" {
		t.Fatal("testservers: EtcdWithTLS needs CertFile and KeyFile")
	}
	return etcd(t, c)
}

func etcd(t testing.TB, c EtcdTLS) *Server {
	t.Helper()
	scheme := "http"
	if c.CertFile != "" {
		scheme = "https"
	}
	return launch(t, spec{
		name:   "etcd",
		binary: envOr("RECONF_ETCD", "etcd"),
		roles:  []string{"client", "peer"},
		args: func(dir string, p map[string]int) []string {
			client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, p["client"])
			peer := fmt.Sprintf("http://127.0.0.1:%d", p["peer"])
			args := []string{
				"--name", "t", "--data-dir", filepath.Join(dir, "data"),
				"--listen-client-urls", client, "--advertise-client-urls", client,
				"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
				"--initial-cluster", "t=" + peer,
			}
			if c.CertFile != "" {
				args = append(args, "--cert-file", c.CertFile, "--key-file", c.KeyFile)
			}
			if c.ClientCAFile != "" {
				args = append(args, "--client-cert-auth", "--trusted-ca-file", c.ClientCAFile)
			}
			return args
		},
		ready: func(ctx context.Context, s *Server) error {
			if scheme == "https" {
				return tlsProbe(ctx, s.Addr, c)
			}
			body, err := httpGet(ctx, "http://"+s.Addr+"/health")
			if err != nil {
				return err
			}
			if !strings.Contains(strings.ReplaceAll(body, " ", ""), `"health":"true"`) {
				return fmt.Errorf("health: %s", body)
			}
			return nil
		},
		timeout: 30 * time.Second,
	})
}

// tlsProbe completes a TLS handshake with the server (not verifying it: the probe only asks
// whether it serves), presenting the probe certificate if there is one.
func tlsProbe(ctx context.Context, addr string, c EtcdTLS) error {
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // readiness probe only
	if c.ProbeCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ProbeCert, c.ProbeKey)
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// ZooKeeper starts ZooKeeper and waits until it answers "ruok" and "srvr" says it serves.
func ZooKeeper(t testing.TB) *Server {
	t.Helper()
	return launch(t, spec{
		name:   "zookeeper",
		binary: envOr("RECONF_JAVA", "java"),
		roles:  []string{"client"},
		setup: func(dir string, p map[string]int) error {
			data := filepath.Join(dir, "data")
			if err := os.MkdirAll(data, 0o755); err != nil {
				return err
			}
			cfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
				"admin.enableServer=false\n4lw.commands.whitelist=*\n", data, p["client"])
			return os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644)
		},
		args: func(dir string, _ map[string]int) []string {
			return []string{
				"-Xmx256m", "-XX:+UseSerialGC", "-Dzookeeper.root.logger=INFO,CONSOLE",
				"-cp", "/usr/share/java/*:/etc/zookeeper/conf",
				"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(dir, "zoo.cfg"),
			}
		},
		ready: func(ctx context.Context, s *Server) error {
			reply, err := tcpExchange(ctx, s.Addr, "ruok", true)
			if err != nil {
				return err
			}
			if reply != "imok" {
				return fmt.Errorf("ruok: %q", reply)
			}
			// "imok" only says the process runs; "srvr" answers with the server's mode once
			// it serves client sessions (before that: "not currently serving requests").
			reply, err = tcpExchange(ctx, s.Addr, "srvr", true)
			if err != nil {
				return err
			}
			if !strings.Contains(reply, "Mode: standalone") {
				return fmt.Errorf("srvr: not serving yet: %q", reply)
			}
			return nil
		},
		timeout: 60 * time.Second,
	})
}

// Redis starts redis-server with keyspace notifications on (KEA) and waits for PONG. Besides
// Addr it listens on the unix socket RedisSocket(s).
func Redis(t testing.TB) *Server {
	t.Helper()
	return launch(t, spec{
		name:   "redis",
		binary: envOr("RECONF_REDIS", "redis-server"),
		roles:  []string{"client"},
		setup: func(dir string, _ map[string]int) error {
			return os.MkdirAll(filepath.Join(dir, "data"), 0o755)
		},
		args: func(dir string, p map[string]int) []string {
			return []string{
				"--bind", "127.0.0.1", "--port", strconv.Itoa(p["client"]), "--save", "",
				"--appendonly", "no", "--dir", filepath.Join(dir, "data"),
				"--notify-keyspace-events", "KEA",
				"--unixsocket", filepath.Join(dir, "redis.sock"), "--unixsocketperm", "700",
			}
		},
		ready: func(ctx context.Context, s *Server) error {
			reply, err := tcpExchange(ctx, s.Addr, "PING\r\n", false)
			if err != nil {
				return err
			}
			if reply != "+PONG" {
				return fmt.Errorf("ping: %q", reply)
			}
			return nil
		},
		timeout: 30 * time.Second,
	})
}

// RedisTLS configures a Redis serving TLS only.
type RedisTLS struct {
	CertFile, KeyFile string // the server's certificate and key
	CAFile            string // CA for client certificates (redis requires one)
	// RequireClientCert makes the server refuse clients without a certificate signed by CAFile.
	RequireClientCert bool
	// ProbeCert and ProbeKey are a client certificate the readiness probe presents.
	ProbeCert, ProbeKey string
}

// RedisWithTLS starts redis-server accepting TLS connections only (on Addr), with keyspace
// notifications on, and waits until it answers PING over TLS.
func RedisWithTLS(t testing.TB, c RedisTLS) *Server {
	t.Helper()
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		t.Fatal("testservers: RedisWithTLS needs CertFile, KeyFile and CAFile")
	}
	auth := "no"
	if c.RequireClientCert {
		auth = "yes"
	}
	return launch(t, spec{
		name:   "redis",
		binary: envOr("RECONF_REDIS", "redis-server"),
		roles:  []string{"client"},
		setup: func(dir string, _ map[string]int) error {
			return os.MkdirAll(filepath.Join(dir, "data"), 0o755)
		},
		args: func(dir string, p map[string]int) []string {
			return []string{
				"--bind", "127.0.0.1", "--port", "0", "--tls-port", strconv.Itoa(p["client"]),
				"--tls-cert-file", c.CertFile, "--tls-key-file", c.KeyFile,
				"--tls-ca-cert-file", c.CAFile, "--tls-auth-clients", auth,
				"--save", "", "--appendonly", "no", "--dir", filepath.Join(dir, "data"),
				"--notify-keyspace-events", "KEA",
			}
		},
		ready: func(ctx context.Context, s *Server) error {
			cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // readiness probe only
			if c.ProbeCert != "" {
				cert, err := tls.LoadX509KeyPair(c.ProbeCert, c.ProbeKey)
				if err != nil {
					return err
				}
				cfg.Certificates = []tls.Certificate{cert}
			}
			d := tls.Dialer{Config: cfg}
			conn, err := d.DialContext(ctx, "tcp", s.Addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			if dl, ok := ctx.Deadline(); ok {
				_ = conn.SetDeadline(dl)
			}
			if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
				return err
			}
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return err
			}
			if strings.TrimSpace(line) != "+PONG" {
				return fmt.Errorf("ping: %q", line)
			}
			return nil
		},
		timeout: 30 * time.Second,
	})
}

// RedisSocket is the unix socket a server from Redis listens on.
func RedisSocket(s *Server) string { return filepath.Join(s.Dir, "redis.sock") }

// ConsulBinary returns the Consul binary the tests use: $RECONF_CONSUL, else the one
// scripts/build-consul.sh caches (under $RECONF_CACHE, $XDG_CACHE_HOME/reconf or
// ~/.cache/reconf).
func ConsulBinary() string {
	if b := os.Getenv("RECONF_CONSUL"); b != "" {
		return b
	}
	cache := os.Getenv("RECONF_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "reconf")
	}
	return filepath.Join(cache, "consul-1.20.6", "consul")
}

// Consul starts a dev agent (binary from scripts/build-consul.sh, or $RECONF_CONSUL) and waits
// until it has a leader. A dev agent keeps its data in memory: after Stop and Start it is empty.
func Consul(t testing.TB) *Server {
	t.Helper()
	bin := ConsulBinary()
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("testservers: consul binary %s missing (build it with scripts/build-consul.sh, or set RECONF_CONSUL): %v", bin, err)
	}
	return launch(t, spec{
		name:   "consul",
		binary: bin,
		roles:  []string{"http", "server", "serf_lan", "serf_wan"},
		setup: func(dir string, _ map[string]int) error {
			return os.MkdirAll(filepath.Join(dir, "data"), 0o755)
		},
		args: func(dir string, p map[string]int) []string {
			return []string{
				"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
				"-data-dir", filepath.Join(dir, "data"),
				"-http-port", strconv.Itoa(p["http"]), "-dns-port", "-1",
				"-grpc-port", "-1", "-grpc-tls-port", "-1",
				"-server-port", strconv.Itoa(p["server"]),
				"-serf-lan-port", strconv.Itoa(p["serf_lan"]),
				"-serf-wan-port", strconv.Itoa(p["serf_wan"]),
			}
		},
		ready: func(ctx context.Context, s *Server) error {
			body, err := httpGet(ctx, "http://"+s.Addr+"/v1/status/leader")
			if err != nil {
				return err
			}
			if b := strings.TrimSpace(body); b == "" || b == `""` {
				return fmt.Errorf("no leader yet")
			}
			return nil
		},
		timeout: 60 * time.Second,
	})
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func httpGet(ctx context.Context, url string) (string, error) { return httpGetLimit(ctx, url, 4096) }

// httpGetLimit GETs url and returns the body, up to limit bytes, of a 200 answer.
func httpGetLimit(ctx context.Context, url string, limit int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

// tcpExchange sends msg and returns the reply: everything until the server closes the
// connection (all), or the first line.
func tcpExchange(ctx context.Context, addr, msg string, all bool) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	if all {
		b, err := io.ReadAll(c)
		return strings.TrimSpace(string(b)), err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
