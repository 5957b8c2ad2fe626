package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/reconf/reconf/backends"
)

func init() {
	// go-redis logs dial failures on its own; ours say the same with the place. Keep its lines
	// for -log-level debug.
	redis.SetLogger(debugLogger{})
	backends.Register("redis", func(o backends.Options) (backends.Backend, error) {
		c, err := FromOptions(o)
		if err != nil {
			return nil, err
		}
		return New(c)
	})
}

const (
	scanCount = 5000 // SCAN COUNT hint: keys examined per round trip
	batch     = 5000 // HGETALLs per pipeline
	mgetBatch = 1000 // keys per MGET
)

// debugLogger sends go-redis's own log lines to slog at debug level.
type debugLogger struct{}

func (debugLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// Client reads and watches Redis. It is safe for concurrent use.
type Client struct {
	cfg   Config
	nodes []*redis.Client // one per Config.Nodes entry; connections are made lazily

	mu  sync.Mutex
	cur int // index of the node that answered last

	keys keyCache // names under live watches' prefixes, so Get can skip SCAN
}

var (
	_ backends.Backend = (*Client)(nil)
	_ backends.Watcher = (*Client)(nil)
)

// New validates cfg and prepares a client per node. It does not connect: Get reports
// backends.ErrUnavailable while no node answers.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg}
	for _, n := range cfg.Nodes {
		c.nodes = append(c.nodes, redis.NewClient(&redis.Options{
			Network:                  n.Network,
			Addr:                     n.Addr,
			DB:                       n.DB,
			Username:                 cfg.Username,
			Password:                 cfg.Password,
			TLSConfig:                tlsCfg,
			DialTimeout:              cfg.DialTimeout,
			ContextTimeoutEnabled:    true,
			MaxRetries:               -1, // we fail over and retry ourselves
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}))
	}
	return c, nil
}

// Close releases every connection.
func (c *Client) Close() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}

// toRedis maps a reconf key to the name Redis holds, as confd does: with a separator other
// than '/', the leading '/' goes and every '/' becomes the separator.
func (c *Client) toRedis(key string) string {
	sep := c.cfg.sep()
	if sep == "/" {
		return key
	}
	return strings.ReplaceAll(strings.TrimPrefix(key, "/"), "/", sep)
}

// fromRedis maps a Redis name back to a reconf key.
func (c *Client) fromRedis(name string) string {
	if sep := c.cfg.sep(); sep != "/" {
		name = strings.ReplaceAll(name, sep, "/")
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return name
}

// globEscape quotes the characters SCAN MATCH and PSUBSCRIBE treat as a pattern.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// childPattern matches the Redis names under prefix p (not p itself).
func (c *Client) childPattern(p string) string {
	if p == "/" {
		if c.cfg.sep() == "/" {
			return "/*"
		}
		return "*"
	}
	return globEscape(c.toRedis(p)) + globEscape(c.cfg.sep()) + "*"
}

// do runs f against the node that answered last, failing over to the others in order when
// one cannot be reached.
func (c *Client) do(ctx context.Context, op string, f func(*redis.Client) error) error {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var errs []error
	for i := range c.nodes {
		idx := (start + i) % len(c.nodes)
		err := f(c.nodes[idx])
		if err == nil {
			c.mu.Lock()
			c.cur = idx
			c.mu.Unlock()
			return nil
		}
		err = c.classify(c.cfg.Nodes[idx], op, err)
		if ctx.Err() != nil || !errors.Is(err, backends.ErrUnavailable) {
			return err
		}
		errs = append(errs, err)
	}
	return backends.JoinErrors(errs...)
}

// classify wraps err with the node, the operation and the sentinel that says whether retrying
// may help. Redis's errors never carry the password.
func (c *Client) classify(n Node, op string, err error) error {
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr) && (redis.HasErrorPrefix(err, "WRONGPASS") || redis.HasErrorPrefix(err, "NOAUTH") ||
		redis.HasErrorPrefix(err, "NOPERM") || strings.Contains(err.Error(), "AUTH")):
		return fmt.Errorf("redis %s: %s: %w: %w", n, op, backends.ErrAuth, err)
	case errors.As(err, &rerr) && !redis.HasErrorPrefix(err, "LOADING") && !redis.HasErrorPrefix(err, "BUSY"):
		return fmt.Errorf("redis %s: %s: %w", n, op, err)
	}
	return fmt.Errorf("redis %s: %s: %w: %w", n, op, backends.ErrUnavailable, err)
}

// Get returns every key at or under each prefix: SCAN MATCH for the names below each prefix
// (all prefixes' cursors advance in one pipeline), or the names a live Watch keeps (see
// keySet), then pipelined GETs, then HGETALL for the names that turned out to be hashes.
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	ps := backends.Dedupe(prefixes)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var out map[string]string
	err := c.do(ctx, "get "+strings.Join(ps, ","), func(rc *redis.Client) error {
		var err error
		out, err = c.read(ctx, rc, ps)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) read(ctx context.Context, rc *redis.Client, ps []string) (map[string]string, error) {
	names, cached := c.cachedNames(rc, ps)
	if !cached {
		var err error
		if names, err = c.scan(ctx, rc, ps); err != nil {
			return nil, err
		}
	}
	out := make(map[string]string, len(names))
	var hashes []string // names MGET had no string for: hashes, other types, or just deleted
	pipe := rc.Pipeline()
	var cmds []*redis.SliceCmd
	for start := 0; start < len(names); start += mgetBatch {
		cmds = append(cmds, pipe.MGet(ctx, names[start:min(start+mgetBatch, len(names))]...))
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
	}
	for j, cmd := range cmds {
		chunk := names[j*mgetBatch : min((j+1)*mgetBatch, len(names))]
		for i, v := range cmd.Val() {
			if s, ok := v.(string); ok {
				out[c.fromRedis(chunk[i])] = s
			} else {
				hashes = append(hashes, chunk[i])
			}
		}
	}
	for start := 0; start < len(hashes); start += batch {
		chunk := hashes[start:min(start+batch, len(hashes))]
		pipe := rc.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(chunk))
		for i, n := range chunk {
			cmds[i] = pipe.HGetAll(ctx, n)
		}
		if _, err := pipe.Exec(ctx); err != nil && !isValueErr(err) {
			return nil, err
		}
		for i, cmd := range cmds {
			switch err := cmd.Err(); {
			case err == nil:
				for f, v := range cmd.Val() {
					out[c.fromRedis(chunk[i]+"/"+f)] = v // as confd: the field joins with '/'
				}
			case errors.Is(err, redis.Nil), redis.HasErrorPrefix(err, "WRONGTYPE"): // gone, or a list, set, …
			default:
				return nil, err
			}
		}
	}
	// Separators and hash fields can put names outside the prefixes (e.g. a field holding
	// the separator): keep exactly what lies under them.
	for k := range out {
		if !underAny(k, ps) {
			delete(out, k)
		}
	}
	return out, nil
}

// isValueErr reports whether a pipeline's first error is about one value (handled per command)
// rather than the connection.
func isValueErr(err error) bool {
	return errors.Is(err, redis.Nil) || redis.HasErrorPrefix(err, "WRONGTYPE")
}

func underAny(k string, ps []string) bool {
	for _, p := range ps {
		if backends.UnderPrefix(k, p) {
			return true
		}
	}
	return false
}

// scan returns the Redis names at or under each prefix, deduplicated. SCAN examines the whole
// keyspace whatever its MATCH, so prefixes that share a top-level directory share one SCAN (of
// their common ancestor, filtered here); the SCANs of the groups advance together, one
// pipeline per step.
func (c *Client) scan(ctx context.Context, rc *redis.Client, ps []string) ([]string, error) {
	seen := map[string]struct{}{}
	var names []string
	add := func(n string) {
		if _, ok := seen[n]; ok {
			return
		}
		seen[n] = struct{}{}
		if underAny(c.fromRedis(n), ps) {
			names = append(names, n)
		}
	}
	type cursor struct {
		pattern string
		pos     uint64
	}
	var active []cursor
	for _, p := range ps {
		if exact := c.toRedis(p); exact != "" {
			add(exact)
		}
	}
	for _, anc := range groupAncestors(ps) {
		active = append(active, cursor{pattern: c.childPattern(anc)})
	}
	for len(active) > 0 {
		pipe := rc.Pipeline()
		cmds := make([]*redis.ScanCmd, len(active))
		for i, cur := range active {
			cmds[i] = pipe.Scan(ctx, cur.pos, cur.pattern, scanCount)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		next := active[:0]
		for i, cmd := range cmds {
			keys, pos := cmd.Val()
			for _, k := range keys {
				add(k)
			}
			if pos != 0 {
				next = append(next, cursor{pattern: active[i].pattern, pos: pos})
			}
		}
		active = next
	}
	return names, nil
}

// groupAncestors groups cleaned, deduplicated prefixes by their top-level directory and
// returns each group's deepest common ancestor (the prefix itself for a group of one).
func groupAncestors(ps []string) []string {
	var order []string
	groups := map[string][]string{}
	for _, p := range ps {
		top, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if _, ok := groups[top]; !ok {
			order = append(order, top)
		}
		groups[top] = append(groups[top], p)
	}
	out := make([]string, 0, len(order))
	for _, top := range order {
		g := groups[top]
		anc := strings.Split(g[0], "/")
		for _, p := range g[1:] {
			segs := strings.Split(p, "/")
			n := 0
			for n < len(anc) && n < len(segs) && anc[n] == segs[n] {
				n++
			}
			anc = anc[:n]
		}
		a := strings.Join(anc, "/")
		if a == "" {
			a = "/"
		}
		out = append(out, a)
	}
	return out
}
