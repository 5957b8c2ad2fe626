package register

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reconf/reconf/backends"
	etcdbackend "github.com/reconf/reconf/backends/etcd"
)

// ErrUsage: the command line is wrong.
var ErrUsage = errors.New("usage")

// Config is one parsed `reconf register` or `reconf deregister` command line.
type Config struct {
	Deregister bool // `reconf deregister`
	Backend    string
	Options    backends.Options // Nodes, TLS and auth, Separator, ServicesPrefix
	Instance   backends.Service
	Check      string
	Interval   time.Duration
	Timeout    time.Duration
	TTL        time.Duration
	Failures   int
	// DeregisterAfter is Consul's DeregisterCriticalServiceAfter (minimum 1m).
	DeregisterAfter time.Duration
	LogLevel        slog.Level
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// Parse reads args (args[0] is "register" or "deregister", the rest are flags).
func Parse(args []string, stderr io.Writer) (Config, error) {
	var c Config
	if len(args) == 0 || (args[0] != "register" && args[0] != "deregister") {
		return c, fmt.Errorf("%w: want `reconf register …` or `reconf deregister …`", ErrUsage)
	}
	c.Deregister = args[0] == "deregister"
	fs := flag.NewFlagSet("reconf "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var nodes, tags, metas multi
	var logLevel string
	o := &c.Options
	fs.StringVar(&c.Backend, "backend", "etcd", "store: etcd (etcdv3), consul, zookeeper, redis")
	fs.Var(&nodes, "node", "store address, repeatable (default per backend)")
	fs.StringVar(&c.Instance.Name, "service", "", "service name (required)")
	fs.StringVar(&c.Instance.ID, "id", "", "instance id (default <service>-<address>-<port>)")
	fs.StringVar(&c.Instance.Address, "address", "", "address clients reach the instance at (required to register)")
	fs.IntVar(&c.Instance.Port, "port", 0, "port clients reach the instance at (required to register)")
	fs.StringVar(&c.Instance.Node, "node-name", "", "host the instance runs on (default: this host's name)")
	fs.Var(&tags, "tag", "tag, repeatable")
	fs.Var(&metas, "meta", "metadata key=value, repeatable")
	fs.StringVar(&c.Check, "check", "", "health check: http://…, https://…, tcp://host:port or exec:CMD (default: none)")
	fs.DurationVar(&c.Interval, "interval", time.Second, "time between checks")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Second, "bound on one check")
	fs.DurationVar(&c.TTL, "ttl", 10*time.Second, "how long the instance outlives reconf if reconf dies")
	fs.IntVar(&c.Failures, "failures", 3, "consecutive failed checks that take the instance down")
	fs.DurationVar(&c.DeregisterAfter, "deregister-after", time.Minute, "consul: deregister a service critical this long")
	fs.StringVar(&o.ServicesPrefix, "services-prefix", backends.DefaultServicesPrefix, "where instances live (etcd, zookeeper, redis)")
	fs.StringVar(&o.Scheme, "scheme", "http", "consul scheme; etcd nodes without one")
	fs.StringVar(&o.SRVDomain, "srv-domain", "", "find store nodes from the DNS SRV record _<backend>._tcp.<domain> (replaces -node)")
	fs.StringVar(&o.SRVRecord, "srv-record", "", "find store nodes from this full DNS SRV record name (overrides -srv-domain)")
	fs.StringVar(&o.ClientCert, "client-cert", "", "TLS client certificate file")
	fs.StringVar(&o.ClientKey, "client-key", "", "TLS client key file (redis: the password, as confd)")
	fs.StringVar(&o.ClientCAKeys, "client-ca-keys", "", "TLS CA file")
	fs.BoolVar(&o.ClientInsecure, "client-insecure", false, "skip TLS verification")
	fs.BoolVar(&o.BasicAuth, "basic-auth", false, "use basic auth (etcd, consul)")
	fs.StringVar(&o.Username, "username", "", "user name")
	fs.StringVar(&o.Password, "password", "", "password (or $RECONF_PASSWORD)")
	fs.StringVar(&o.AuthToken, "auth-token", "", "consul ACL token (or $RECONF_AUTH_TOKEN)")
	fs.StringVar(&o.Separator, "separator", "/", "redis: replaces '/' in keys")
	fs.DurationVar(&o.DialTimeout, "dial-timeout", backends.DefaultDialTimeout, "store connect timeout")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 5*time.Second, "store request timeout")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn, error")
	if err := fs.Parse(args[1:]); err != nil {
		return c, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	o.Nodes = nodes
	if o.Password == "" {
		o.Password = os.Getenv("RECONF_PASSWORD")
	}
	if o.AuthToken == "" {
		o.AuthToken = os.Getenv("RECONF_AUTH_TOKEN")
	}
	c.Instance.Tags = tags
	if len(metas) > 0 {
		c.Instance.Meta = map[string]string{}
		for _, kv := range metas {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return c, fmt.Errorf("%w: -meta %q: want key=value", ErrUsage, kv)
			}
			c.Instance.Meta[k] = v
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(strings.Replace(logLevel, "warning", "warn", 1))); err != nil {
		return c, fmt.Errorf("%w: -log-level %q", ErrUsage, logLevel)
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	if c.Backend == "etcdv3" {
		c.Backend = "etcd"
	}
	switch c.Backend {
	case "etcd", "consul", "zookeeper", "redis":
	default:
		return fmt.Errorf("%w: -backend %q: register supports etcd, consul, zookeeper, redis", ErrUsage, c.Backend)
	}
	s := &c.Instance
	if s.Name == "" || strings.Contains(s.Name, "/") {
		return fmt.Errorf("%w: -service %q: want a name without '/'", ErrUsage, s.Name)
	}
	if !c.Deregister {
		if s.Address == "" || s.Port < 1 || s.Port > 65535 {
			return fmt.Errorf("%w: -address and -port (1-65535) are required", ErrUsage)
		}
		if s.Node == "" {
			s.Node, _ = os.Hostname()
		}
		if c.Interval <= 0 || c.Timeout <= 0 || c.Failures < 1 {
			return fmt.Errorf("%w: -interval and -timeout must be positive, -failures at least 1", ErrUsage)
		}
		if c.TTL <= c.Interval || c.TTL < time.Second {
			return fmt.Errorf("%w: -ttl %v must be at least 1s and longer than -interval %v", ErrUsage, c.TTL, c.Interval)
		}
		if _, err := ParseCheck(c.Check); err != nil {
			return fmt.Errorf("%w: -check: %w", ErrUsage, err)
		}
	}
	if s.ID == "" {
		if c.Deregister {
			return fmt.Errorf("%w: -id is required", ErrUsage)
		}
		s.ID = fmt.Sprintf("%s-%s-%d", s.Name, strings.NewReplacer(":", "_", "[", "", "]", "").Replace(s.Address), s.Port)
	}
	if strings.Contains(s.ID, "/") {
		return fmt.Errorf("%w: -id %q: want an id without '/'", ErrUsage, s.ID)
	}
	return nil
}

// Main runs `reconf register` or `reconf deregister`; args[0] is the subcommand. It returns the
// exit code: 0 after a clean deregistration on SIGTERM/SIGINT (or a done deregister), 1 on
// failure, 2 on a wrong command line.
func Main(args []string) int {
	c, err := Parse(args, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "reconf:", err)
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, c, log); err != nil {
		log.Error(args[0]+" failed", "err", err)
		return 1
	}
	return 0
}

// Run registers c.Instance and keeps it alive until ctx is done, then deregisters it; with
// c.Deregister it removes the instance once and returns.
func Run(ctx context.Context, c Config, log *slog.Logger) error {
	log = log.With("backend", c.Backend, "service", c.Instance.Name, "id", c.Instance.ID)
	if err := resolveSRV(ctx, &c); err != nil {
		return fmt.Errorf("backend %s: %w", c.Backend, err)
	}
	st, err := newStore(c, log)
	if err != nil {
		return fmt.Errorf("backend %s: %w", c.Backend, err)
	}
	defer st.Close()
	if c.Deregister {
		dctx, cancel := context.WithTimeout(ctx, c.Options.Request())
		defer cancel()
		if err := st.Deregister(dctx); err != nil {
			return fmt.Errorf("backend %s: deregister %s/%s: %w", c.Backend, c.Instance.Name, c.Instance.ID, err)
		}
		log.Info("instance deregistered")
		return nil
	}
	check, err := ParseCheck(c.Check)
	if err != nil {
		return err
	}
	log.Info("registering", "address", c.Instance.Address, "port", c.Instance.Port, "check", redactCheck(c.Check),
		"interval", c.Interval, "ttl", c.TTL, "failures", c.Failures)
	lc := loopConfig{Interval: c.Interval, Timeout: c.Timeout, Failures: c.Failures, Log: log}
	return keepAlive(ctx, st, check, lc, c.Options.Request())
}

// resolveSRV replaces c's nodes by those -srv-domain or -srv-record name, as the daemon does.
func resolveSRV(ctx context.Context, c *Config) error {
	o := &c.Options
	var extra []string
	if c.Backend == "etcd" {
		extra = etcdbackend.SRVFallbacks(o.ClientCAKeys != "" || o.ClientCert != "" || o.ClientInsecure)
	}
	recs := o.SRVRecords(c.Backend, extra...)
	if recs == nil {
		return nil
	}
	nodes, err := backends.LookupNodes(ctx, *o, recs)
	if err != nil {
		return err
	}
	o.Nodes, o.SRVDomain, o.SRVRecord = nodes, "", ""
	return nil
}

func newStore(c Config, log *slog.Logger) (store, error) {
	switch c.Backend {
	case "etcd":
		return newEtcd(c, log)
	case "consul":
		return newConsul(c)
	case "zookeeper":
		return newZK(c, log)
	case "redis":
		return newRedis(c)
	}
	return nil, fmt.Errorf("%w: unknown backend %q", backends.ErrConfig, c.Backend)
}
