package etcd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
)

// DefaultNode is the address used when neither Options.Nodes, SRV discovery nor $ETCDCTL_PEERS
// names one.
const DefaultNode = "127.0.0.1:2379"

// Config is everything the etcd backend needs. Build it with FromOptions or by hand, then call
// New (which validates it).
type Config struct {
	Endpoints []string // URLs with scheme: http://host:port or https://host:port
	Username  string
	Password  string // never logged nor put in an error
	CAFile    string // PEM CA bundle; set alone it means server-verified TLS
	CertFile  string // client certificate (mutual TLS) …
	KeyFile   string // … and its key
	Insecure  bool   // skip server certificate verification
	// DialTimeout bounds connecting (and authenticating); RequestTimeout bounds each read.
	DialTimeout, RequestTimeout time.Duration
	// ProgressInterval is how long a watch may stay silent before Watch asks the server for a
	// progress notification; a second silent interval means the stream stalled: it is rebuilt,
	// away from members that do not answer a status probe (a frozen member keeps its
	// connection open for the gRPC keepalive's 10 s or more). Default:
	// DefaultProgressInterval with several endpoints, DefaultSingleProgressInterval with one.
	ProgressInterval time.Duration
	// BackoffBase and BackoffMax bound the wait between watch reconnection attempts.
	BackoffBase, BackoffMax time.Duration
	Logger                  *slog.Logger
}

// Defaults for Config fields left zero.
const (
	DefaultProgressInterval = time.Second
	// DefaultSingleProgressInterval is the progress interval with one endpoint: there is no
	// other member to steer a stalled watch to, so finding it sooner would only stop the
	// mirrors answering sooner (a frozen server sends nothing to mirror meanwhile), and the
	// gRPC keepalive closes the connection to a frozen or unreachable server after 10 s plus
	// DialTimeout anyway. A progress request wakes an idle process for ~0.5 ms of CPU (issue 14:
	// a request a second kept 50 idle watches at 0.05 % of a core; confd's are at 0.00 %).
	DefaultSingleProgressInterval = 10 * time.Second
	DefaultBackoffBase            = 200 * time.Millisecond
	DefaultBackoffMax             = 15 * time.Second
)

// FromOptions builds a Config from confd-style options. name is the name the backend was
// chosen by ("etcd" or "etcdv3"); like confd it names the SRV record _<name>._tcp.<domain>.
func FromOptions(name string, o backends.Options) (Config, error) {
	c := Config{
		Password:         o.Password,
		CAFile:           o.ClientCAKeys,
		CertFile:         o.ClientCert,
		KeyFile:          o.ClientKey,
		Insecure:         o.ClientInsecure,
		DialTimeout:      o.Dial(),
		RequestTimeout:   o.Request(),
		ProgressInterval: o.ProbeInterval,
	}
	if o.BasicAuth || o.Username != "" {
		c.Username = o.Username
	}
	if !o.BasicAuth && o.Username == "" {
		c.Password = ""
	}
	tlsOn := c.CAFile != "" || c.CertFile != "" || c.Insecure
	nodes := splitNodes(o.Nodes)
	if o.SRVDomain != "" || o.SRVRecord != "" {
		found, err := discover(name, o, tlsOn)
		if err != nil {
			return Config{}, err
		}
		nodes = found
	}
	if len(nodes) == 0 {
		if env := os.Getenv("ETCDCTL_PEERS"); env != "" {
			nodes = splitNodes([]string{env})
		} else {
			nodes = []string{DefaultNode}
		}
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	for _, n := range nodes {
		if !strings.Contains(n, "://") {
			n = scheme + "://" + n
		}
		c.Endpoints = append(c.Endpoints, n)
	}
	return c, c.Validate()
}

func splitNodes(in []string) []string {
	var out []string
	for _, n := range in {
		for _, p := range strings.Split(n, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// SRVFallbacks are the SRV services tried under -srv-domain after confd's _etcd._tcp: etcd's
// own, _etcd-client-ssl._tcp (with TLS) and _etcd-client._tcp.
func SRVFallbacks(tls bool) []string {
	if tls {
		return []string{"_etcd-client-ssl._tcp", "_etcd-client._tcp"}
	}
	return []string{"_etcd-client._tcp"}
}

// discover finds nodes by DNS SRV as confd does: the record is SRVRecord, else
// _<name>._tcp.<SRVDomain>; each target becomes scheme://host:port. When the confd-style record
// has no answer it also tries etcd's own _etcd-client-ssl._tcp (with TLS) and _etcd-client._tcp.
func discover(name string, o backends.Options, tlsOn bool) ([]string, error) {
	scheme := o.Scheme
	if scheme == "" {
		scheme = "http"
		if tlsOn {
			scheme = "https"
		}
	}
	nodes, err := backends.LookupNodes(context.Background(), o, o.SRVRecords(name, SRVFallbacks(tlsOn)...))
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	for i, n := range nodes {
		nodes[i] = scheme + "://" + n
	}
	return nodes, nil
}

// Validate reports whether c can be used, wrapping backends.ErrConfig.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("etcd: %w: %s", backends.ErrConfig, fmt.Sprintf(format, a...))
	}
	if len(c.Endpoints) == 0 {
		return bad("no endpoints")
	}
	for _, e := range c.Endpoints {
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") &&
			!strings.HasPrefix(e, "unix://") && !strings.HasPrefix(e, "unixs://") {
			return bad("endpoint %q: scheme must be http, https, unix or unixs", e)
		}
		if strings.HasPrefix(e, "http") {
			u, err := url.Parse(e)
			if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return bad("endpoint %q: want scheme://host:port", e)
			}
			if p, err := strconv.Atoi(u.Port()); err != nil || p <= 0 || p > 65535 {
				return bad("endpoint %q: want scheme://host:port with a port 1–65535", e)
			}
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("client certificate and key must be given together (cert %q, key %q)", c.CertFile, c.KeyFile)
	}
	if c.Password != "" && c.Username == "" {
		return bad("a password needs a username")
	}
	if c.DialTimeout < 0 || c.RequestTimeout < 0 || c.ProgressInterval < 0 {
		return bad("negative timeout")
	}
	return nil
}

// tlsConfig returns the TLS settings, or nil when none are configured.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" && !c.Insecure && !anyHTTPS(c.Endpoints) {
		return nil, nil
	}
	t, err := backends.TLSConfig(c.CAFile, c.CertFile, c.KeyFile, c.Insecure)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return t, nil
}

func anyHTTPS(eps []string) bool {
	for _, e := range eps {
		if strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "unixs://") {
			return true
		}
	}
	return false
}

func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = backends.DefaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = backends.DefaultRequestTimeout
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
		if len(c.Endpoints) == 1 {
			c.ProgressInterval = DefaultSingleProgressInterval
		}
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
