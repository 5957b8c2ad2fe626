package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
)

// Defaults for a Config left unset.
const (
	DefaultNode = "127.0.0.1:8500"
	// DefaultWaitTime is how long a blocking query may wait on the server. The request is
	// abandoned (and the agent counted as stalled) if no answer comes within WaitTime plus
	// Consul's jitter (WaitTime/16) plus RequestTimeout.
	DefaultWaitTime = 60 * time.Second
	// MinQueryGap is the least time between the starts of two blocking queries on one prefix
	// while its answers come at once (after QueryBurst back to back): a burst of writes is
	// looked at every 15ms, not once per write, and its last write is seen at most about that
	// long after it was made. It grows while answers keep coming (QueryGapHold).
	MinQueryGap = 15 * time.Millisecond
	// QueryGapHold is how long the gap stays at MinGap while answers keep coming at once; it
	// then doubles for each further QueryGapHold, up to MaxQueryGap. A burst of a few seconds
	// is seen to its end within MinGap; a store that answers every query at once for good (a
	// flapping key, an index reset loop) costs one query per MaxQueryGap, and over its first
	// 10 s about as many queries as 20 a second would.
	QueryGapHold = 2 * time.Second
	// MaxQueryGap caps the grown gap.
	MaxQueryGap = time.Second
	// DefaultMirrorTTL is how long after a watch's latest answer Get may still serve it from
	// memory. A killed agent is noticed at once (the watch's connection closes); a frozen one
	// only by a timeout, so past this Get asks the agent again. The answer that wakes a
	// watch is served to the Get that follows its signal, milliseconds later.
	DefaultMirrorTTL = 2 * time.Second
	// DefaultProbeInterval is how often a watching client asks the agent for the leader
	// (stall.go): a frozen server is left within a few seconds.
	DefaultProbeInterval = time.Second
	// QueryBurst is how many blocking queries on one prefix may start back to back before
	// the gap applies, so that changes in quick succession each reach disk at once.
	QueryBurst = 5
)

// Config is everything the Consul backend needs. Build it with FromOptions or by hand, then
// call New (which validates it).
type Config struct {
	Address   string // host:port of the agent (the first of -node; http:// or https:// allowed)
	Scheme    string // "http" (default) or "https"
	Token     string // ACL token; default $CONSUL_HTTP_TOKEN. Never logged.
	BasicAuth bool
	Username  string
	Password  string // never logged or put in errors
	CAFile    string
	CertFile  string
	KeyFile   string
	Insecure  bool // skip TLS verification

	DialTimeout    time.Duration
	RequestTimeout time.Duration // bounds one Get and the slack of a blocking query
	WaitTime       time.Duration // blocking query wait; default DefaultWaitTime
	MinGap         time.Duration // least time between blocking queries (grown while answers come at once); default MinQueryGap
	BackoffBase    time.Duration // first wait after an error; default 100ms
	BackoffMax     time.Duration // cap of the wait after errors; default 10s
	Logger         *slog.Logger  // nil: slog.Default()
	// MirrorTTL is how long after a watch's answer Get may serve it without asking the agent
	// (mirror.go); default DefaultMirrorTTL; negative: Get always asks the agent.
	MirrorTTL time.Duration
	// ProbeInterval is how often watches ask the agent for the leader while its answers come
	// (stall.go); default DefaultProbeInterval. With a single server in the datacenter the
	// prober asks at most this often and at least every 30 s.
	ProbeInterval time.Duration
}

// FromOptions builds a Config from the user's options. -srv-domain/-srv-record
// (_consul._tcp.<domain>) replace -node, as in confd.
func FromOptions(ctx context.Context, o backends.Options) (Config, error) {
	c := Config{
		Scheme:         o.Scheme,
		Token:          o.AuthToken,
		BasicAuth:      o.BasicAuth,
		Username:       o.Username,
		Password:       o.Password,
		CAFile:         o.ClientCAKeys,
		CertFile:       o.ClientCert,
		KeyFile:        o.ClientKey,
		Insecure:       o.ClientInsecure,
		DialTimeout:    o.Dial(),
		RequestTimeout: o.Request(),
		ProbeInterval:  o.ProbeInterval,
	}
	if c.Token == "" {
		c.Token = os.Getenv("CONSUL_HTTP_TOKEN")
	}
	nodes := o.Nodes
	if recs := o.SRVRecords("consul"); recs != nil { // as confd: SRV replaces -node
		var err error
		if nodes, err = backends.LookupNodes(ctx, o, recs); err != nil {
			return Config{}, fmt.Errorf("consul: %w", err)
		}
	}
	if len(nodes) > 0 {
		c.Address = nodes[0] // as confd: one agent; run a local agent for failover
	}
	return c, nil
}

// withDefaults fills unset fields and moves a scheme written in Address into Scheme.
func (c Config) withDefaults() Config {
	if c.Address == "" {
		c.Address = DefaultNode
	}
	if s, rest, ok := strings.Cut(c.Address, "://"); ok && (s == "http" || s == "https") {
		c.Scheme, c.Address = s, strings.TrimSuffix(rest, "/")
	}
	if c.Scheme == "" {
		c.Scheme = "http"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = backends.DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = backends.DefaultRequestTimeout
	}
	if c.WaitTime <= 0 {
		c.WaitTime = DefaultWaitTime
	}
	if c.MinGap <= 0 {
		c.MinGap = MinQueryGap
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.MirrorTTL == 0 {
		c.MirrorTTL = DefaultMirrorTTL
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem with c (after defaults), wrapping backends.ErrConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" {
		errs = append(errs, fmt.Errorf("node %q: want host:port", safeAddr(c.Address)))
	} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		errs = append(errs, fmt.Errorf("node %q: bad port", safeAddr(c.Address)))
	}
	if c.Scheme != "http" && c.Scheme != "https" {
		errs = append(errs, fmt.Errorf("scheme %q: want http or https", c.Scheme))
	}
	if c.BasicAuth && c.Username == "" {
		errs = append(errs, errors.New("basic auth needs a username"))
	}
	if c.ProbeInterval < 0 {
		errs = append(errs, fmt.Errorf("probe interval %v: negative", c.ProbeInterval))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("a client certificate needs its key, and a key its certificate"))
	}
	for _, f := range []struct{ what, path string }{{"client cert", c.CertFile}, {"client key", c.KeyFile}, {"ca", c.CAFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.what, err))
		}
	}
	if err := backends.JoinErrors(errs...); err != nil {
		return fmt.Errorf("consul: %w: %w", backends.ErrConfig, err)
	}
	return nil
}

// safeAddr is addr fit for an error: user information ("user:password@", which Consul's
// client does not take in an address anyway) is masked.
func safeAddr(addr string) string {
	host, _, _ := strings.Cut(addr, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		return "<redacted>@" + addr[i+1:]
	}
	return addr
}
