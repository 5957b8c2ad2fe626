package vault

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
)

// DefaultNode is the address used when Options.Nodes is empty.
const DefaultNode = "http://127.0.0.1:8200"

// Auth methods, by confd's -auth-type names.
const (
	AuthToken    = "token"
	AuthAppRole  = "app-role"
	AuthUserpass = "userpass"
	AuthCert     = "cert"
)

// Config is everything the vault backend needs. Build it with FromOptions or by hand; New
// validates it. Token, SecretID and Password are never logged nor put in an error.
type Config struct {
	Address  string // http(s)://host:port
	AuthType string // AuthToken, AuthAppRole, AuthUserpass or AuthCert
	// AuthPath is where the auth method is mounted (-path); "" means its usual name
	// (approle, userpass, cert).
	AuthPath string
	Token    string // -auth-token (token)
	RoleID   string // -role-id (app-role)
	SecretID string // -secret-id (app-role)
	Username string // -username (userpass)
	Password string // -password (userpass)
	// CAFile, CertFile, KeyFile and Insecure are the TLS settings (-client-ca-keys,
	// -client-cert, -client-key, -client-insecure). The cert method logs in with the client
	// certificate.
	CAFile, CertFile, KeyFile string
	Insecure                  bool
	// RequestTimeout bounds each HTTP request to Vault.
	RequestTimeout time.Duration
	// Concurrency is how many secrets a Get reads at once (default DefaultConcurrency).
	Concurrency int
	// ReloginBackoff bounds the wait between failed logins after a token could not be renewed
	// (default DefaultReloginBackoff).
	ReloginBackoff time.Duration
	Logger         *slog.Logger
}

// Defaults for Config fields left zero.
const (
	DefaultConcurrency    = 8
	DefaultReloginBackoff = 10 * time.Second
)

// FromOptions builds a Config from confd's options: the first -node, -auth-type and the
// credentials of that method, the TLS flags and -path.
func FromOptions(o backends.Options) (Config, error) {
	c := Config{
		AuthType:       o.AuthType,
		AuthPath:       o.Path,
		Token:          o.AuthToken,
		RoleID:         o.RoleID,
		SecretID:       o.SecretID,
		Username:       o.Username,
		Password:       o.Password,
		CAFile:         o.ClientCAKeys,
		CertFile:       o.ClientCert,
		KeyFile:        o.ClientKey,
		Insecure:       o.ClientInsecure,
		RequestTimeout: o.Request(),
	}
	switch len(o.Nodes) {
	case 0:
		c.Address = DefaultNode
	case 1:
		c.Address = o.Nodes[0]
	default:
		return Config{}, fmt.Errorf("%w: vault: -node: vault takes one address, got %d (%s)",
			backends.ErrConfig, len(o.Nodes), strings.Join(o.Nodes, ", "))
	}
	if !strings.Contains(c.Address, "://") {
		scheme := "http://"
		if c.CAFile != "" || c.CertFile != "" || c.Insecure {
			scheme = "https://"
		}
		c.Address = scheme + c.Address
	}
	return c, c.Validate()
}

// Validate checks the address and that the auth method has its credentials. Errors wrap
// backends.ErrConfig and name the flag, never a secret.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: vault: "+format, append([]any{backends.ErrConfig}, a...)...)
	}
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("-node %q: want http://host:port or https://host:port", c.Address)
	}
	if u.User != nil {
		return bad("-node: no credentials in the address; use -auth-type and its flags")
	}
	need := func(flags ...string) error {
		vals := map[string]string{"-auth-token": c.Token, "-role-id": c.RoleID, "-secret-id": c.SecretID,
			"-username": c.Username, "-password": c.Password, "-client-cert": c.CertFile, "-client-key": c.KeyFile}
		for _, f := range flags {
			if vals[f] == "" {
				return bad("-auth-type %s needs %s", c.AuthType, f)
			}
		}
		return nil
	}
	switch c.AuthType {
	case "":
		return bad("-auth-type is required: token, app-role, userpass or cert")
	case AuthToken:
		return need("-auth-token")
	case AuthAppRole, "approle":
		return need("-role-id", "-secret-id")
	case AuthUserpass:
		return need("-username", "-password")
	case AuthCert:
		if u.Scheme != "https" {
			return bad("-auth-type cert needs an https:// -node (the client certificate is presented over TLS)")
		}
		return need("-client-cert", "-client-key")
	case "app-id":
		return bad("-auth-type app-id is not available: Vault removed the App ID auth method in 1.12; use app-role (-role-id, -secret-id)")
	case "kubernetes":
		return bad("-auth-type kubernetes is not available in reconf: it needs a pod's service-account token, which reconf cannot test against a real cluster here; use app-role or token")
	default:
		return bad("-auth-type %q: want token, app-role, userpass or cert", c.AuthType)
	}
}

// authPath is the mount path of the auth method.
func (c Config) authPath() string {
	if c.AuthPath != "" {
		return strings.Trim(c.AuthPath, "/")
	}
	switch c.AuthType {
	case AuthAppRole, "approle":
		return "approle"
	default:
		return c.AuthType
	}
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ReloginBackoff <= 0 {
		c.ReloginBackoff = DefaultReloginBackoff
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = backends.DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
