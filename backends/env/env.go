package env

import (
	"context"
	"os"
	"strings"

	"github.com/reconf/reconf/backends"
)

// Name is the name the backend registers under.
const Name = "env"

func init() {
	backends.Register(Name, func(o backends.Options) (backends.Backend, error) { return New(o) })
}

// Client reads the process environment. It has no state and is safe for concurrent use.
type Client struct {
	environ func() []string
}

var _ backends.Backend = (*Client)(nil)

// New returns a client of the process environment. The env backend takes no options.
func New(backends.Options) (*Client, error) {
	return &Client{environ: os.Environ}, nil
}

// Get returns every variable whose key lies at or under one of prefixes.
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefixes = backends.Dedupe(prefixes)
	names := make([]string, len(prefixes))
	for i, p := range prefixes {
		names[i] = VarName(p)
	}
	out := make(map[string]string)
	from := make(map[string]string) // key → the variable it was read from
	for _, e := range c.environ() {
		name, value, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			continue
		}
		key := Key(name)
		for i, p := range prefixes {
			if !strings.HasPrefix(name, names[i]) || !backends.UnderPrefix(key, p) {
				continue
			}
			if prev, dup := from[key]; !dup || prefer(name, prev) {
				out[key], from[key] = value, name
			}
			break
		}
	}
	return out, nil
}

// prefer reports whether variable a wins over b when both map to the same key
// (HTTP_PROXY and http_proxy): the upper-case name first, then the smaller name.
func prefer(a, b string) bool {
	ua, ub := a == strings.ToUpper(a), b == strings.ToUpper(b)
	if ua != ub {
		return ua
	}
	return a < b
}

// Close does nothing.
func (c *Client) Close() error { return nil }

// VarName returns the variable that holds key: /app/db/host → APP_DB_HOST.
func VarName(key string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(key, "/"), "/", "_"))
}

// Key returns the key a variable holds: APP_DB_HOST → /app/db/host.
func Key(name string) string {
	return "/" + strings.ReplaceAll(strings.ToLower(name), "_", "/")
}
