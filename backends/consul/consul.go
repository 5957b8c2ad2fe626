package consul

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"

	"github.com/reconf/reconf/backends"
)

func init() {
	backends.Register("consul", func(o backends.Options) (backends.Backend, error) {
		ctx, cancel := context.WithTimeout(context.Background(), o.Dial())
		defer cancel()
		cfg, err := FromOptions(ctx, o)
		if err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// Client reads, watches and discovers through one Consul agent. It is safe for concurrent use.
type Client struct {
	cfg       Config
	api       *api.Client
	apiConfig *api.Config // as completed by api.NewClient; Get builds its requests from it
	transport *http.Transport
	local     bool // the agent is on a loopback address: Get asks for uncompressed bodies

	mirrors  mirrorSet    // the answers of live watches, which Get serves (mirror.go)
	groups   groupSet     // watches whose prefixes share a folder (share.go)
	reads    atomic.Int64 // lists sent by Get (for tests)
	blocking atomic.Int64 // blocking queries in flight (for tests)
	epoch    time.Time    // when New ran: heard counts from it on the monotonic clock
	heard    atomic.Int64 // time from epoch to the agent's latest answer to any request
	stall    stallWatch   // sends blocking queries again when a server may hold them (stall.go)
	advised  sync.Once    // the agent's configuration was checked (agentcfg.go)
}

var (
	_ backends.Backend    = (*Client)(nil)
	_ backends.Watcher    = (*Client)(nil)
	_ backends.Discoverer = (*Client)(nil)
	_ sortedGetter        = (*Client)(nil)
)

// sortedGetter is what resource.Sync and the runner look for: Get with the keys sorted and
// the values in a parallel slice; errors.ErrUnsupported sends them to Get.
type sortedGetter interface {
	GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error)
}

// New validates cfg and returns a client. It does not contact the agent.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tr := cleanhttp.DefaultPooledTransport()
	tr.DialContext = (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	ac := &api.Config{
		Address:   cfg.Address,
		Scheme:    cfg.Scheme,
		Token:     cfg.Token,
		Transport: tr,
		TLSConfig: api.TLSConfig{
			CAFile:             cfg.CAFile,
			CertFile:           cfg.CertFile,
			KeyFile:            cfg.KeyFile,
			InsecureSkipVerify: cfg.Insecure,
		},
	}
	if cfg.BasicAuth {
		ac.HttpAuth = &api.HttpBasicAuth{Username: cfg.Username, Password: cfg.Password}
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("consul %s: %w: %w", cfg.Address, backends.ErrConfig, redact(err, cfg))
	}
	return &Client{cfg: cfg, api: c, apiConfig: ac, transport: tr, local: loopback(ac.Address), epoch: time.Now()}, nil
}

// API returns the underlying Consul client, for tests and tools.
func (c *Client) API() *api.Client { return c.api }

// Close releases idle connections.
func (c *Client) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// Get returns every key at or under each prefix. While a Watch is live on a prefix that
// covers every requested one and its latest answer is current, Get answers from that answer
// (mirror.go) without asking the agent. Otherwise prefixes are read in parallel, each in one
// request decoded as it streams in; Get fails as a whole if any read fails.
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	roots := backends.Dedupe(prefixes)
	if ctx.Err() == nil {
		if kv, ok := c.mirrors.get(roots, c.cfg.MirrorTTL, c.lastHeard()); ok {
			return kv, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	out := &sink{kv: make(map[string]string)}
	errs := make([]error, len(roots))
	var wg sync.WaitGroup
	for i, p := range roots {
		c.reads.Add(1)
		wg.Go(func() {
			if _, err := c.list(ctx, p, blocking{}, out.add); err != nil {
				errs[i] = c.wrap("list "+p, err)
			}
		})
	}
	wg.Wait()
	if err := backends.JoinErrors(errs...); err != nil {
		return nil, err
	}
	return out.result(), nil
}

// GetSorted is Get with the keys sorted and the values in a parallel slice, answered from the
// answers of live watches only: when they do not cover every prefix it returns an error
// wrapping errors.ErrUnsupported, and the caller uses Get.
func (c *Client) GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error) {
	roots := backends.Dedupe(prefixes)
	if ctx.Err() == nil {
		if keys, values, ok := c.mirrors.getSorted(roots, c.cfg.MirrorTTL, c.lastHeard()); ok {
			return keys, values, nil
		}
	}
	return nil, nil, fmt.Errorf("consul %s: sorted read of %s: no current watch answer: %w",
		c.cfg.Address, strings.Join(roots, ","), errors.ErrUnsupported)
}

// markHeard notes that the agent answered a request just now.
func (c *Client) markHeard() { c.heard.Store(int64(time.Since(c.epoch))) }

// lastHeard is when the agent last answered any request of this client, if that proves the
// agent alive for every watch (a loopback agent); else the zero time.
func (c *Client) lastHeard() time.Time {
	if !c.local {
		return time.Time{}
	}
	return c.epoch.Add(time.Duration(c.heard.Load()))
}

// consulKey turns a cleaned prefix into Consul's key form (no leading '/'; the root is "").
func consulKey(p string) string { return strings.TrimPrefix(p, "/") }

// wrap classifies an error from the Consul API: 401/403 wrap backends.ErrAuth, anything else
// backends.ErrUnavailable. Credentials never appear in it.
func (c *Client) wrap(op string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("consul %s: %s: %w", c.cfg.Address, op, err)
	}
	kind := backends.ErrUnavailable
	var se api.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden) {
		kind = backends.ErrAuth
	}
	return fmt.Errorf("consul %s: %s: %w: %w", c.cfg.Address, op, kind, redact(err, c.cfg))
}

// redact hides the token and password should a library put them into an error's text.
func redact(err error, cfg Config) error {
	msg := err.Error()
	for _, s := range []string{cfg.Token, cfg.Password} {
		if len(s) >= 4 && strings.Contains(msg, s) {
			return redacted{err: err, cfg: cfg}
		}
	}
	return err
}

type redacted struct {
	err error
	cfg Config
}

func (r redacted) Error() string {
	msg := r.err.Error()
	for _, s := range []string{r.cfg.Token, r.cfg.Password} {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

func (r redacted) Unwrap() error { return r.err }
