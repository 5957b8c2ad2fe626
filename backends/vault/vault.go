package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/backends"
)

// Name is the name the backend registers under.
const Name = "vault"

func init() {
	backends.Register(Name, func(o backends.Options) (backends.Backend, error) {
		cfg, err := FromOptions(o)
		if err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// Client reads secrets from Vault. It is safe for concurrent use.
type Client struct {
	cfg  Config
	api  *vaultapi.Client
	http *http.Client // api's, to close idle connections
	sess *session
}

var (
	_ backends.Backend      = (*Client)(nil)
	_ backends.SecretHolder = (*Client)(nil)
	// Not a backends.Watcher: Vault has no way to watch secrets; the runner polls.
)

// New validates cfg and returns a client. It does not log in: the first Get does, so a
// Vault that is down or sealed at start is an error of that Get (retried at the next poll),
// not of reconf's start.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	vc := vaultapi.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("%w: vault: %v", backends.ErrConfig, vc.Error)
	}
	vc.Address = cfg.Address
	vc.Timeout = cfg.RequestTimeout
	vc.MaxRetries = 0 // a failed poll is retried by the next one; an outage must show at once
	tlsCfg, err := backends.TLSConfig(cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	tr, ok := vc.HttpClient.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("%w: vault: unexpected HTTP transport %T", backends.ErrConfig, vc.HttpClient.Transport)
	}
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = cfg.Concurrency
	api, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("%w: vault: %v", backends.ErrConfig, err)
	}
	api.ClearToken() // NewClient takes $VAULT_TOKEN; reconf uses only -auth-type's credentials
	return &Client{cfg: cfg, api: api, http: vc.HttpClient, sess: newSession(cfg, api)}, nil
}

// HoldsSecrets reports true: every value the vault backend returns is a secret.
func (c *Client) HoldsSecrets() bool { return true }

// Get returns every key at or under prefixes with confd's mapping (see the package doc). It
// reads Vault afresh each time; nothing is cached. Any failed request fails the whole Get.
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ps := backends.Dedupe(prefixes)
	if err := c.sess.ensure(ctx); err != nil {
		return nil, err
	}
	out, err := c.read(ctx, ps)
	if err != nil && errors.Is(err, backends.ErrAuth) && c.tokenRefused(ctx) {
		// The token itself was refused (revoked, or expired under us): log in again once.
		c.sess.invalidate()
		if lerr := c.sess.ensure(ctx); lerr != nil {
			return nil, lerr
		}
		out, err = c.read(ctx, ps)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// tokenRefused reports whether Vault refuses the client's token as such (not just one path).
func (c *Client) tokenRefused(ctx context.Context) bool {
	_, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	code := status(err)
	return code == http.StatusForbidden || code == http.StatusUnauthorized
}

// Close stops renewing the token. It does not revoke it: a login token expires by itself.
func (c *Client) Close() error {
	c.sess.close()
	c.http.CloseIdleConnections()
	return nil
}
