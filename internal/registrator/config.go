package registrator

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrUsage: the command line is wrong (exit 2). Any other error from Parse is an invalid value
// (exit 1), as registrator tells them apart.
var ErrUsage = errors.New("usage")

// ErrInvalid: a flag or the URI has a value registrator refuses.
var ErrInvalid = errors.New("invalid")

// Config is one parsed `reconf registrator` command line.
type Config struct {
	URI            *url.URL
	HostIP         string // -ip
	Internal       bool   // -internal
	Explicit       bool   // -explicit
	UseIPFromLabel string // -useIpFromLabel
	Tags           string // -tags
	Cleanup        bool   // -cleanup
	Deregister     string // -deregister: always or on-success
	Resync         time.Duration
	TTL            time.Duration
	TTLRefresh     time.Duration
	RetryAttempts  int // -1: forever
	RetryInterval  time.Duration
	// Heal is how often reconf checks that the store still holds every service it registered
	// and restores what is missing (reconf's own; 0 turns it off).
	Heal time.Duration
	// KVValue is what an instance's key holds on etcd, ZooKeeper and Redis: "ip:port"
	// (registrator's etcd value) or "json" (reconf register's, with tags and meta); ""
	// means "ip:port" on etcd and "json" elsewhere (reconf's own).
	KVValue string
	// KVChecks runs SERVICE_CHECK_HTTP/_HTTPS/_TCP on etcd, ZooKeeper and Redis (reconf's own).
	KVChecks bool
	// Timeout bounds one store request.
	Timeout  time.Duration
	Hostname string
	LogLevel slog.Level
}

const usageText = `Usage: reconf registrator [options] <registry URI>

Registers every published port of the containers the Docker engine ($DOCKER_HOST, default
unix:///var/run/docker.sock) runs, as gliderlabs/registrator does. Registry URIs:
  consul://host:port   etcd://host:port/path   zookeeper://host:port/path   redis://host:port/path

Options (before the URI):
`

// Parse reads args (args[0] is "registrator").
func Parse(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("reconf registrator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	var resync, ttl, ttlRefresh, retryInterval int
	var logLevel string
	fs.StringVar(&c.HostIP, "ip", "", "IP for ports mapped to the host")
	fs.BoolVar(&c.Internal, "internal", false, "use internal ports (and the container's IP) instead of published ones")
	fs.BoolVar(&c.Explicit, "explicit", false, "only register containers which have SERVICE_NAME set")
	fs.StringVar(&c.UseIPFromLabel, "useIpFromLabel", "", "use the IP stored in this container label")
	fs.StringVar(&c.Tags, "tags", "", "append tags (comma-separated) to every service")
	fs.BoolVar(&c.Cleanup, "cleanup", false, "remove dangling services (this host's, of no running container)")
	fs.StringVar(&c.Deregister, "deregister", "always", `deregister exited services "always" or "on-success"`)
	fs.IntVar(&resync, "resync", 0, "frequency (seconds) with which services are resynchronized (0: never)")
	fs.IntVar(&ttl, "ttl", 0, "TTL (seconds) of services on etcd, Redis (0: no expiry) and ZooKeeper (session timeout, default 10)")
	fs.IntVar(&ttlRefresh, "ttl-refresh", 0, "frequency (seconds) with which service TTLs are refreshed")
	fs.IntVar(&c.RetryAttempts, "retry-attempts", 0, "max retry attempts to reach the backend at start (-1: forever)")
	fs.IntVar(&retryInterval, "retry-interval", 2000, "interval (milliseconds) between retry attempts")
	fs.DurationVar(&c.Heal, "heal", 10*time.Second, "reconf: how often to check that the store still holds what was registered and restore what it lost (0: never)")
	fs.StringVar(&c.KVValue, "kv-value", "", "reconf: what a key holds on etcd, zookeeper and redis: ip:port (registrator's etcd value; the default on etcd) or json (with tags and meta; the default on zookeeper and redis)")
	fs.BoolVar(&c.KVChecks, "kv-checks", true, "reconf: on etcd, zookeeper and redis run SERVICE_CHECK_HTTP/_HTTPS/_TCP and keep an instance only while its check passes")
	fs.DurationVar(&c.Timeout, "store-timeout", 3*time.Second, "reconf: bound on one store request")
	fs.StringVar(&logLevel, "log-level", "info", "reconf: debug, info, warn, error")
	if len(args) > 0 && args[0] == "registrator" {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	switch fs.NArg() {
	case 0:
		fs.Usage()
		return c, fmt.Errorf("%w: missing required argument for registry URI", ErrUsage)
	case 1:
	default:
		fs.Usage()
		return c, fmt.Errorf("%w: extra arguments after the registry URI: %s (options go before it)", ErrUsage, strings.Join(fs.Args()[1:], " "))
	}
	if err := c.LogLevel.UnmarshalText([]byte(strings.Replace(logLevel, "warning", "warn", 1))); err != nil {
		return c, fmt.Errorf("%w: -log-level %q", ErrUsage, logLevel)
	}
	c.Resync = time.Duration(resync) * time.Second
	c.TTL = time.Duration(ttl) * time.Second
	c.TTLRefresh = time.Duration(ttlRefresh) * time.Second
	c.RetryInterval = time.Duration(retryInterval) * time.Millisecond
	c.Hostname, _ = os.Hostname()
	u, err := url.Parse(fs.Arg(0))
	if err != nil {
		return c, fmt.Errorf("%w: bad adapter uri: %s", ErrInvalid, fs.Arg(0))
	}
	c.URI = u
	return c, c.validate()
}

func (c *Config) validate() error {
	ttl, refresh := c.TTL, c.TTLRefresh
	switch c.URI.Scheme {
	case "consul", "etcd", "zookeeper", "redis":
	default:
		return fmt.Errorf("%w: unrecognized adapter: %s (known: consul, etcd, zookeeper, redis)", ErrInvalid, c.URI.String())
	}
	switch {
	case (ttl == 0) != (refresh == 0) && !(c.URI.Scheme == "zookeeper" && refresh == 0):
		return fmt.Errorf("%w: -ttl and -ttl-refresh must be specified together or not at all", ErrInvalid)
	case ttl < 0 || refresh < 0:
		return fmt.Errorf("%w: -ttl and -ttl-refresh must not be negative", ErrInvalid)
	case ttl > 0 && refresh > 0 && ttl <= refresh:
		return fmt.Errorf("%w: -ttl must be greater than -ttl-refresh", ErrInvalid)
	case c.RetryInterval <= 0:
		return fmt.Errorf("%w: -retry-interval must be greater than 0", ErrInvalid)
	case c.Deregister != "always" && c.Deregister != "on-success":
		return fmt.Errorf(`%w: -deregister must be "always" or "on-success"`, ErrInvalid)
	case c.KVValue != "" && c.KVValue != "ip:port" && c.KVValue != "json":
		return fmt.Errorf(`%w: -kv-value must be "ip:port" or "json"`, ErrInvalid)
	case c.RetryAttempts < -1:
		return fmt.Errorf("%w: -retry-attempts must be -1 (forever) or more", ErrInvalid)
	case c.Heal < 0 || c.Timeout <= 0:
		return fmt.Errorf("%w: -heal must not be negative and -store-timeout must be positive", ErrInvalid)
	}
	return nil
}
