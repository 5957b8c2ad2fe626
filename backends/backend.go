package backends

import (
	"context"
	"net"
	"time"
)

// Backend reads snapshots. A prefix names a key or a directory; Get returns every key at or
// under each prefix ("/app/db" matches "/app/db" and "/app/db/host", never "/app/db-replica"),
// keys as absolute '/'-separated paths. A prefix ending in "/*" means the same as without it.
// A prefix that matches nothing is not an error. Get returns an error rather than partial data:
// stale beats partial. Get must be safe for concurrent use.
type Backend interface {
	Get(ctx context.Context, prefixes []string) (map[string]string, error)
	Close() error
}

// Watcher is implemented by backends that can say that data under prefixes may have changed.
// Watch sends on changed without blocking (the caller owns and never closes it; a full channel
// means a signal is already pending), reconnects by itself with capped, jittered backoff,
// signals once after every reconnect (events may have been missed), and returns only when ctx
// is done (returning ctx.Err()) or on an error that retrying cannot fix.
type Watcher interface {
	Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error
}

// Service is one healthy instance of a service, as the template function `service` returns it.
type Service struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Port    int               `json:"port"`
	Tags    []string          `json:"tags,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
	Node    string            `json:"node,omitempty"`
}

// Discoverer is implemented by backends with a native service catalog (Consul). Backends
// without one are served by the key convention in package discovery.
type Discoverer interface {
	// Services returns the healthy instances of name (optionally only those carrying tag,
	// and on Consul in datacenter dc), sorted by ID.
	Services(ctx context.Context, name, tag, dc string) ([]Service, error)
	// ServiceNames returns every service name with the union of its tags, names sorted.
	ServiceNames(ctx context.Context) (map[string][]string, error)
}

// Options carries everything a user can set for a backend: confd's flags and config keys.
// Each driver reads what it understands, builds its own typed Config from it and validates it.
type Options struct {
	Nodes     []string // addresses; empty means the driver's default
	Scheme    string   // "http" or "https" (consul; SRV-found etcd nodes)
	SRVDomain string   // find nodes by DNS SRV
	SRVRecord string   // a full SRV record name, overriding SRVDomain
	// Resolver answers the SRV lookups (nil: the system's resolver). Not a flag: for
	// programs embedding reconf, and for tests against a real DNS server on a spare port.
	Resolver       *net.Resolver
	ClientCert     string // TLS client certificate file
	ClientKey      string // TLS client key file (also confd's redis password)
	ClientCAKeys   string // TLS CA file
	ClientInsecure bool   // skip TLS verification
	BasicAuth      bool
	Username       string
	Password       string
	AuthToken      string // consul ACL token, vault token
	AuthType       string
	AppID          string
	UserID         string
	RoleID         string
	SecretID       string
	Path           string
	Separator      string   // redis: replaces '/' in keys
	Files          []string // file backend: files or directories
	Filter         string   // file backend: glob on base names
	DialTimeout    time.Duration
	RequestTimeout time.Duration
	// ServicesPrefix is where the key convention for services lives (default "/services").
	ServicesPrefix string
	// ProbeInterval is how long a watch on a silent store waits before it checks that the
	// member it talks to still answers (etcd: a progress request; Consul: the agent is asked
	// for the leader); a frozen member is left within about two of these. 0: the driver's
	// default (1 s where there is another member to move to).
	ProbeInterval time.Duration
}

// Defaults used when Options leave a timeout unset.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultServicesPrefix = "/services"
)

// Dial returns o.DialTimeout or its default.
func (o Options) Dial() time.Duration {
	if o.DialTimeout > 0 {
		return o.DialTimeout
	}
	return DefaultDialTimeout
}

// Request returns o.RequestTimeout or its default.
func (o Options) Request() time.Duration {
	if o.RequestTimeout > 0 {
		return o.RequestTimeout
	}
	return DefaultRequestTimeout
}

// SecretHolder is implemented by backends whose values are secrets (Vault). A resource that
// reads one writes its destination 0600 when it sets no mode, and its -noop diff says which
// lines changed without showing them; values, tokens and secret IDs never reach a log line,
// an error or a metric.
type SecretHolder interface {
	HoldsSecrets() bool
}
