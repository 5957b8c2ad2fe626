package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
)

func init() {
	backends.Register("zookeeper", func(o backends.Options) (backends.Backend, error) {
		ctx, cancel := context.WithTimeout(context.Background(), o.Dial())
		defer cancel()
		cfg, err := FromOptions(ctx, o)
		if err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// Client reads (and watches) a ZooKeeper ensemble. It is safe for concurrent use.
type Client struct {
	cfg Config

	poolMu     sync.Mutex
	poolClosed bool
	sess       []*session // Config.Sessions sessions for walkGet, dialled when first needed
	conns      []*zk.Conn // sess[i].conn

	authMu sync.Mutex
	authed []bool // per conns[i]

	closeOnce sync.Once

	noMulti atomic.Bool // the server lacks multiRead: Get walks with one request per node
	wireMu  sync.Mutex
	wire    *wireConn // a wire session kept between Gets (see takeWire)
	closed  bool

	silent silentNodes // servers that stopped answering lately (a wire session or a session's watchdog)

	mirrors     backends.COWList[*mirror] // of the live Watch calls
	serverReads atomic.Int64              // Gets that read the server (tests)
	seedHook    func()                    // tests: called before a Watch (re)reads its subtrees
}

var (
	_ backends.Backend = (*Client)(nil)
	_ backends.Watcher = (*Client)(nil)
)

// New validates cfg and returns a client. It does not contact the servers: New does not fail
// when they are down; Get does.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, authed: make([]bool, cfg.Sessions)}, nil
}

// pool returns the go-zookeeper sessions of walkGet, dialling them the first time.
func (c *Client) pool() ([]*zk.Conn, error) {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	if c.poolClosed {
		return nil, fmt.Errorf("zookeeper %s: %w: client closed", c.node(nil), backends.ErrUnavailable)
	}
	for len(c.sess) < c.cfg.Sessions {
		ss, err := dial(c.cfg, nil, &c.silent)
		if err != nil {
			return nil, err
		}
		c.sess, c.conns = append(c.sess, ss), append(c.conns, ss.conn)
	}
	return c.conns, nil
}

// Close ends the sessions. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.wireMu.Lock()
		wc := c.wire
		c.wire, c.closed = nil, true
		c.wireMu.Unlock()
		if wc != nil {
			wc.close()
		}
		c.poolMu.Lock()
		c.poolClosed = true
		sess := c.sess
		c.poolMu.Unlock()
		var wg sync.WaitGroup
		for _, ss := range sess {
			wg.Go(ss.close)
		}
		wg.Wait()
	})
	return nil
}

// Get returns every key at or under each prefix. See the package comment for what a key is.
// While a Watch covers every prefix, Get answers from its mirror without asking the server.
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("zookeeper %s: get: %w", c.node(nil), err)
	}
	if kv, ok := c.fromMirrors(prefixes); ok {
		return kv, nil
	}
	c.serverReads.Add(1)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	kv, err := c.get(ctx, prefixes)
	// A connection lost mid-read (or a first dial that failed) is retried twice, briefly:
	// go-zookeeper reconnects by itself, and a server that is really down still fails fast.
	for attempt := 0; attempt < 2 && lostConn(err); attempt++ {
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
			kv, err = c.get(ctx, prefixes)
		}
	}
	if err != nil && parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		// Our own timeout, not the caller's: the ensemble did not answer in time.
		return nil, fmt.Errorf("zookeeper %s: get %q: no answer within %v: %w: %w",
			c.node(nil), prefixes, c.cfg.RequestTimeout, backends.ErrUnavailable, err)
	}
	return kv, err
}

func (c *Client) get(ctx context.Context, prefixes []string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("zookeeper %s: get: %w", c.node(nil), err)
	}
	if !c.noMulti.Load() {
		kv, err := c.getMulti(ctx, backends.Dedupe(prefixes))
		if !errors.Is(err, errNoMultiRead) {
			return kv, err
		}
		c.cfg.Logger.Info("the server lacks multiRead (ZooKeeper 3.6+): reading one node per request", "backend", "zookeeper")
		c.noMulti.Store(true)
	}
	return c.walkGet(ctx, prefixes)
}

// walkGet reads with go-zookeeper, one request per node, Concurrency in flight over the
// Sessions sessions: for servers without multiRead.
func (c *Client) walkGet(ctx context.Context, prefixes []string) (map[string]string, error) {
	conns, err := c.pool()
	if err != nil {
		return nil, err
	}
	if err := c.authAll(ctx, conns); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	out := make(map[string]string)
	roots := backends.Dedupe(prefixes)
	visit := func(worker int, p string) ([]string, error) {
		conn := conns[worker%len(conns)]
		data, stat, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		if err != nil {
			return nil, c.wrap(conn, "get", p, err)
		}
		if stat.NumChildren == 0 || len(data) > 0 {
			mu.Lock()
			out[p] = string(data)
			mu.Unlock()
		}
		if stat.NumChildren == 0 {
			return nil, nil
		}
		kids, _, err := conn.Children(p)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		if err != nil {
			return nil, c.wrap(conn, "children", p, err)
		}
		return childPaths(p, kids), nil
	}
	if err := walk(ctx, roots, c.cfg.Concurrency, visit); err != nil {
		return nil, err
	}
	return out, nil
}

// childPaths joins parent and names, leaving out ZooKeeper's own /zookeeper under the root.
func childPaths(parent string, names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if parent == "/" {
			if n == "zookeeper" {
				continue
			}
			out = append(out, "/"+n)
			continue
		}
		out = append(out, parent+"/"+n)
	}
	return out
}

// lostConn reports whether err means the connection (not the request) failed.
func lostConn(err error) bool {
	return errors.Is(err, errLost) || errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrSessionExpired)
}

// authAll adds the digest credentials to every session of the pool, once.
func (c *Client) authAll(ctx context.Context, conns []*zk.Conn) error {
	if c.cfg.Username == "" {
		return nil
	}
	c.authMu.Lock()
	defer c.authMu.Unlock()
	for i, conn := range conns {
		if c.authed[i] {
			continue
		}
		if err := c.auth(ctx, conn); err != nil {
			return err
		}
		c.authed[i] = true
	}
	return nil
}

// auth adds the digest credentials to conn; go-zookeeper resends them on every reconnect.
func (c *Client) auth(ctx context.Context, conn *zk.Conn) error {
	if c.cfg.Username == "" {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- conn.AddAuth("digest", []byte(c.cfg.Username+":"+c.cfg.Password)) }()
	select {
	case err := <-done:
		if err != nil {
			return c.wrap(conn, "auth as "+c.cfg.Username, "", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("zookeeper %s: auth: %w: %w", c.node(conn), backends.ErrUnavailable, ctx.Err())
	}
}

// node names the server conn talks to, or the configured nodes.
func (c *Client) node(conn *zk.Conn) string {
	if conn != nil {
		if s := conn.Server(); s != "" {
			return s
		}
	}
	return strings.Join(c.cfg.Nodes, ",")
}

// wrap classifies a go-zookeeper error from conn: refused credentials wrap backends.ErrAuth,
// anything else backends.ErrUnavailable. It names the server conn talks to.
func (c *Client) wrap(conn *zk.Conn, op, path string, err error) error {
	kind := backends.ErrUnavailable
	if errors.Is(err, zk.ErrNoAuth) || errors.Is(err, zk.ErrAuthFailed) {
		kind = backends.ErrAuth
	}
	where := op
	if path != "" {
		where += " " + path
	}
	return fmt.Errorf("zookeeper %s: %s: %w: %w", c.node(conn), where, kind, err)
}

// zkLogger routes go-zookeeper's chatter to slog at debug level.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	z.l.Debug(fmt.Sprintf(format, args...), "backend", "zookeeper")
}
