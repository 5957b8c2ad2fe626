package main

import (
	"flag"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
)

// Defaults that differ from confd's (see README "confd compatibility").
const (
	defaultConfDir    = "/etc/reconf"
	defaultConfigFile = "/etc/reconf/reconf.toml"
	defaultBackend    = "etcd"
	defaultInterval   = 600
	defaultLogLevel   = "info"
	defaultLogFormat  = "text"
	defaultTimeout    = 60 * time.Second
)

// options is everything a user can set: by flag, RECONF_* variable or reconf.toml key.
type options struct {
	// Run.
	ConfDir       string
	ConfigFile    string
	Backend       string
	Interval      int
	Onetime       bool
	Watch         bool
	Noop          bool
	SyncOnly      bool
	KeepStageFile bool
	Prefix        string
	Wait          string
	CheckTimeout  time.Duration
	ReloadTimeout time.Duration
	MetricsAddr   string
	MinInterval   time.Duration
	LogLevel      string
	LogFormat     string
	Version       bool

	// Backend.
	Nodes          listValue
	Scheme         string
	SRVDomain      string
	SRVRecord      string
	ClientCert     string
	ClientKey      string
	ClientCAKeys   string
	ClientInsecure bool
	BasicAuth      bool
	Username       string
	Password       string
	AuthToken      string
	AuthType       string
	AppID          string
	UserID         string
	RoleID         string
	SecretID       string
	Path           string
	Separator      string
	Files          listValue
	Filter         string
	ServicesPrefix string
	ProbeInterval  time.Duration
}

// newFlagSet defines every flag of reconf on o, with its default. It is the one place where
// flags are defined: the man page is generated from it.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("reconf", flag.ContinueOnError)

	// Where things are.
	fs.StringVar(&o.ConfDir, "confdir", defaultConfDir, "directory holding conf.d/ (template resources) and templates/")
	fs.StringVar(&o.ConfigFile, "config-file", defaultConfigFile, "reconf.toml (or confd.toml) to read settings from; a missing file is fine")

	// Run modes.
	fs.IntVar(&o.Interval, "interval", defaultInterval, "seconds between two polls of the backend")
	fs.BoolVar(&o.Onetime, "onetime", false, "render every resource once and exit: 0 if all succeeded, 1 otherwise")
	fs.BoolVar(&o.Watch, "watch", false, "render at start and on every change the backend reports")
	fs.BoolVar(&o.Noop, "noop", false, "change nothing: print a unified diff of what would be written")
	fs.BoolVar(&o.SyncOnly, "sync-only", false, "write files but run neither check_cmd nor reload_cmd")
	fs.BoolVar(&o.KeepStageFile, "keep-stage-file", false, "leave the stage file next to the destination")
	fs.StringVar(&o.Prefix, "prefix", "", "global key prefix: when set it replaces every resource's prefix")
	fs.StringVar(&o.Wait, "wait", "", "debounce changes, `min:max` (e.g. 2s:10s; a bare min means max = 4×min); a resource's own wait wins")
	fs.DurationVar(&o.CheckTimeout, "check-timeout", defaultTimeout, "how long check_cmd may run before it is killed")
	fs.DurationVar(&o.ReloadTimeout, "reload-timeout", defaultTimeout, "how long reload_cmd may run before it is killed")
	fs.DurationVar(&o.MinInterval, "min-interval", 200*time.Millisecond, "spaces the change-triggered renders of one resource while changes keep coming: a change after this long without a render renders at once; a later one waits until 4× this has passed since the last render (16× for the burst's later ones), or less once the store was quiet for 25ms (37.5ms within this long of the last such sooner render), so a burst of a few seconds costs a render at its start, at most one while it lasts and one at its end, not one per change; 0: no limit")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve /metrics (Prometheus), /health and /ready on this `host:port`; empty: off")

	// Logging.
	fs.StringVar(&o.LogLevel, "log-level", defaultLogLevel, "log level: panic, fatal, error, warn (warning), info or debug")
	fs.StringVar(&o.LogFormat, "log-format", defaultLogFormat, "log format: text or json")
	fs.BoolVar(&o.Version, "version", false, "print the version, commit and Go version, then exit")

	// Backend.
	fs.StringVar(&o.Backend, "backend", defaultBackend, "backend to read keys from: "+strings.Join(backends.Names(), ", "))
	fs.Var(&o.Nodes, "node", "backend `address`, repeatable (default per backend: etcd 127.0.0.1:2379, consul 127.0.0.1:8500, redis 127.0.0.1:6379, zookeeper 127.0.0.1:2181, vault http://127.0.0.1:8200)")
	fs.StringVar(&o.Scheme, "scheme", "http", "URL scheme (consul; prefixed to etcd nodes found by SRV): http or https")
	fs.StringVar(&o.SRVDomain, "srv-domain", "", "find backend nodes from the DNS SRV record _<backend>._tcp.<domain>")
	fs.StringVar(&o.SRVRecord, "srv-record", "", "find backend nodes from this full DNS SRV record name (overrides -srv-domain)")
	fs.StringVar(&o.ClientCert, "client-cert", "", "TLS client certificate `file` (etcd, consul, vault)")
	fs.StringVar(&o.ClientKey, "client-key", "", "TLS client key `file` (etcd, consul, vault); with redis, the password (as in confd)")
	fs.StringVar(&o.ClientCAKeys, "client-ca-keys", "", "TLS certificate authority `file` (etcd, consul, vault)")
	fs.BoolVar(&o.ClientInsecure, "client-insecure", false, "skip verification of the backend's TLS certificate")
	fs.BoolVar(&o.BasicAuth, "basic-auth", false, "use basic authentication with -username and -password (etcd, consul)")
	fs.StringVar(&o.Username, "username", "", "user name (etcd, consul basic auth; vault userpass)")
	fs.StringVar(&o.Password, "password", "", "password (etcd, consul, redis; vault userpass); never logged")
	fs.StringVar(&o.AuthToken, "auth-token", "", "auth token (consul ACL token, vault token); never logged")
	fs.StringVar(&o.AuthType, "auth-type", "", "vault auth type: token, app-role, userpass or cert (confd's app-id and kubernetes are refused, saying why)")
	fs.StringVar(&o.AppID, "app-id", "", "vault app-id")
	fs.StringVar(&o.UserID, "user-id", "", "vault user-id")
	fs.StringVar(&o.RoleID, "role-id", "", "vault role-id (app-role, kubernetes)")
	fs.StringVar(&o.SecretID, "secret-id", "", "vault secret-id (app-role); never logged")
	fs.StringVar(&o.Path, "path", "", "vault auth mount path")
	fs.StringVar(&o.Separator, "separator", "/", "redis: the separator that replaces '/' in keys")
	fs.Var(&o.Files, "file", "file backend: a YAML or JSON `file` or a directory of them, repeatable")
	fs.StringVar(&o.Filter, "filter", "*", "file backend: glob on the base names of files found in directories")
	fs.StringVar(&o.ServicesPrefix, "services-prefix", "/services", "key prefix under which \"reconf register\" and the template function \"service\" keep service instances (every backend but consul)")
	fs.DurationVar(&o.ProbeInterval, "probe-interval", 0, "etcd and consul -watch: how long a silent store may stay silent before reconf checks that the member it talks to still answers (etcd: a progress request; consul: the agent is asked for the leader); a frozen member is left within about two of these; 0: 1s where there is another member to move to (10s for etcd with one -node, 30s for a one-server Consul datacenter). Each check costs the store one small request: a fleet of hundreds of hosts may prefer 10s")
	return fs
}

// listValue is a repeatable string flag. The first Set replaces the value it started with (a
// default, or a list from the config file or environment); later ones append.
type listValue struct {
	list    []string
	started bool
}

func (l *listValue) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.list, ",")
}

func (l *listValue) Set(s string) error {
	if !l.started {
		l.list, l.started = nil, true
	}
	l.list = append(l.list, s)
	return nil
}

// Get implements flag.Getter.
func (l *listValue) Get() any { return l.values() }

func (l *listValue) values() []string {
	if l == nil {
		return nil
	}
	return append([]string(nil), l.list...)
}

// replace sets the whole list at once (a list from a file, a variable or another flag set).
func (l *listValue) replace(v []string) {
	l.list, l.started = append([]string(nil), v...), false
}
