package redis

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reconf/reconf/backends"
)

// DefaultNode is the address used when Options.Nodes is empty.
const DefaultNode = "127.0.0.1:6379"

// Config is everything the Redis backend needs. Build it with FromOptions or by hand; New
// validates it.
type Config struct {
	Nodes     []Node // tried in order; the first that answers serves
	Username  string // Redis 6 ACL user (optional)
	Password  string // never logged nor put in an error
	Separator string // replaces '/' in key names; "" means "/"
	CAFile    string // TLS: PEM CA bundle
	CertFile  string // TLS: client certificate …
	KeyFile   string // … and key
	TLS       bool   // use TLS (implied by CAFile, CertFile, Insecure, or a rediss:// node)
	Insecure  bool   // skip server certificate verification
	// DialTimeout bounds connecting; RequestTimeout bounds each Get.
	DialTimeout, RequestTimeout time.Duration
	// PingInterval is how long the notification connection may stay silent before it is
	// pinged; no answer within another interval means it stalled and is rebuilt.
	PingInterval time.Duration
	// PollInterval is how often Watch re-reads when keyspace notifications are off.
	PollInterval time.Duration
	// BackoffBase and BackoffMax bound the wait between reconnection attempts.
	BackoffBase, BackoffMax time.Duration
	Logger                  *slog.Logger
}

// Node is one server address.
type Node struct {
	Network string // "tcp" or "unix"
	Addr    string // host:port or socket path
	DB      int
}

func (n Node) String() string {
	if n.DB == 0 {
		return n.Addr
	}
	return n.Addr + "/" + strconv.Itoa(n.DB)
}

// Defaults for Config fields left zero.
const (
	DefaultPingInterval = 10 * time.Second
	DefaultPollInterval = 10 * time.Second
	DefaultBackoffBase  = 200 * time.Millisecond
	DefaultBackoffMax   = 15 * time.Second
)

// FromOptions builds a Config from confd-style options. -srv-domain/-srv-record
// (_redis._tcp.<domain>) replace -node, as in confd.
func FromOptions(o backends.Options) (Config, error) {
	c := Config{
		Username:       o.Username,
		Password:       o.Password,
		Separator:      o.Separator,
		CAFile:         o.ClientCAKeys,
		Insecure:       o.ClientInsecure,
		DialTimeout:    o.Dial(),
		RequestTimeout: o.Request(),
	}
	if o.ClientCert != "" {
		c.CertFile, c.KeyFile = o.ClientCert, o.ClientKey
	} else if c.Password == "" {
		c.Password = o.ClientKey // confd passes the redis password as -client-key
	}
	c.TLS = c.CAFile != "" || c.CertFile != "" || c.Insecure
	nodes := o.Nodes
	if recs := o.SRVRecords("redis"); recs != nil { // as confd: SRV replaces -node
		found, err := backends.LookupNodes(context.Background(), o, recs)
		if err != nil {
			return Config{}, fmt.Errorf("redis: %w", err)
		}
		nodes = found
	}
	if len(nodes) == 0 {
		nodes = []string{DefaultNode}
	}
	for _, s := range nodes {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			n, tlsURL, err := ParseNode(part)
			if err != nil {
				return Config{}, err
			}
			if c.Username == "" && c.Password == "" {
				c.Username, c.Password = urlCredentials(part)
			}
			c.TLS = c.TLS || tlsURL
			c.Nodes = append(c.Nodes, n)
		}
	}
	return c, c.Validate()
}

// ParseNode reads one node as confd does: host:port, host:port/<db>, or a unix socket path
// (a path that exists, or that starts with '/' or '.'), optionally followed by /<db>; or a
// redis:// or rediss:// URL (tls reports rediss).
func ParseNode(s string) (n Node, tls bool, err error) {
	bad := func(why string) error {
		return fmt.Errorf("redis: %w: node %q: %s", backends.ErrConfig, safeNode(s), why)
	}
	if strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://") || strings.HasPrefix(s, "unix://") {
		o, err := redis.ParseURL(s)
		if err != nil {
			return Node{}, false, bad(redactURLError(err))
		}
		if o.DB < 0 {
			return Node{}, false, bad("negative database")
		}
		return Node{Network: o.Network, Addr: o.Addr, DB: o.DB}, o.TLSConfig != nil, nil
	}
	n = Node{Network: "tcp", Addr: s}
	if i := strings.LastIndex(s, "/"); i >= 0 {
		if db, err := strconv.Atoi(s[i+1:]); err == nil && i > 0 {
			if db < 0 {
				return Node{}, false, bad("negative database")
			}
			n.Addr, n.DB = s[:i], db
		}
	}
	if _, err := os.Stat(n.Addr); err == nil || strings.HasPrefix(n.Addr, "/") || strings.HasPrefix(n.Addr, ".") {
		n.Network = "unix"
	} else if host, port, err := net.SplitHostPort(n.Addr); err != nil || host == "" {
		return Node{}, false, bad("want host:port, host:port/db or a socket path")
	} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return Node{}, false, bad("bad port")
	}
	return n, false, nil
}

// urlCredentials returns the user and password a redis:// or rediss:// node carries
// ("redis://user:password@host:port"); they serve every node when no -username, -password or
// -client-key password is given.
func urlCredentials(node string) (user, password string) {
	if !strings.HasPrefix(node, "redis://") && !strings.HasPrefix(node, "rediss://") {
		return "", ""
	}
	o, err := redis.ParseURL(node)
	if err != nil {
		return "", ""
	}
	return o.Username, o.Password
}

// safeNode is node s fit for errors and logs: the user information of a URL node (which may
// hold a password) is masked.
func safeNode(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		return scheme + "://<redacted>@" + rest[i+1:]
	}
	return s
}

// redactURLError keeps a URL parse error from echoing the URL, which may hold a password.
func redactURLError(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "@") {
		return "invalid URL"
	}
	return msg
}

// Validate reports whether c can be used, wrapping backends.ErrConfig.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("redis: %w: %s", backends.ErrConfig, fmt.Sprintf(format, a...))
	}
	if len(c.Nodes) == 0 {
		return bad("no nodes")
	}
	for _, n := range c.Nodes {
		if n.Network != "tcp" && n.Network != "unix" {
			return bad("node %s: network %q", n, n.Network)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("client certificate and key must be given together")
	}
	if c.DialTimeout < 0 || c.RequestTimeout < 0 || c.PingInterval < 0 || c.PollInterval < 0 {
		return bad("negative timeout")
	}
	return nil
}

func (c Config) sep() string {
	if c.Separator == "" {
		return "/"
	}
	return c.Separator
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	t, err := backends.TLSConfig(c.CAFile, c.CertFile, c.KeyFile, c.Insecure)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return t, nil
}

func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = backends.DefaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = backends.DefaultRequestTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
