package ct

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	ctconfig "github.com/hashicorp/consul-template/config"
	dep "github.com/hashicorp/consul-template/dependency"
	cttemplate "github.com/hashicorp/consul-template/template"
	"github.com/hashicorp/consul-template/watch"
)

// Vault answers consul-template's Vault functions (secret, secrets, pkiCert) as consul-template
// does: its own template functions read a Brain filled from consul-template's own watcher,
// which fetches each secret with consul-template's dependency queries and re-reads it per its
// lease (a renewable lease is renewed until it cannot be, then the secret is read again; a
// non-renewable lease or a KV secret is read again at lease_renewal_threshold of its lease, or
// of default_lease_duration; a listing every default_lease_duration). The token is unwrapped,
// renewed and re-read from the agent token file by consul-template's token watcher.
//
// A render that calls secret before its first answer waits for it (ErrWaiting, as
// consul-template's missing dependencies); Run reports each answer by calling changed, and the
// caller renders again. Safe for concurrent use.
type Vault struct {
	clients *dep.ClientSet
	w       *watch.Watcher // the secrets
	tokens  *watch.Watcher // token renewal and agent token file; nil without a token
	done    chan struct{}  // closed by Stop: ends the agent token file loop
	stop    sync.Once
	log     *slog.Logger

	mu      sync.Mutex
	watched map[string]dep.Dependency // by dependency name
	data    map[string]vaultAnswer    // by dependency name: the latest answer
}

type vaultAnswer struct {
	d    dep.Dependency
	data any
}

// NewVault makes the Vault client from consul-template's vault {} configuration (Finalize()d:
// flags, files and VAULT_* variables merged) as consul-template's runner does, unwraps the
// token and starts renewing it. once is consul-template's -once: each secret is read once.
func NewVault(c *ctconfig.VaultConfig, once bool, log *slog.Logger) (*Vault, error) {
	if log == nil {
		log = slog.Default()
	}
	clients := dep.NewClientSet()
	if err := clients.CreateVaultClient(vaultInput(c)); err != nil {
		return nil, fmt.Errorf("runner: %s", err)
	}
	// Process-wide in consul-template too (set once, by the first runner).
	dep.SetVaultDefaultLeaseDuration(ctconfig.TimeDurationVal(c.DefaultLeaseDuration))
	if c.LeaseRenewalThreshold != nil {
		dep.SetVaultLeaseRenewalThreshold(*c.LeaseRenewalThreshold)
	}
	v := &Vault{clients: clients, done: make(chan struct{}), log: log,
		watched: map[string]dep.Dependency{}, data: map[string]vaultAnswer{}}
	tokens, err := watch.VaultTokenWatcher(clients, c, v.done)
	if err != nil {
		clients.Stop()
		return nil, err
	}
	v.tokens = tokens
	v.w = watch.NewWatcher(&watch.NewWatcherInput{
		Clients:        clients,
		Once:           once,
		RetryFuncVault: watch.RetryFunc(c.Retry.RetryFunc()),
		VaultToken:     clients.Vault().Token(),
	})
	return v, nil
}

// vaultInput is consul-template's runner's CreateVaultClientInput (manager/runner.go).
func vaultInput(c *ctconfig.VaultConfig) *dep.CreateVaultClientInput {
	sv, bv, iv, dv := ctconfig.StringVal, ctconfig.BoolVal, ctconfig.IntVal, ctconfig.TimeDurationVal
	return &dep.CreateVaultClientInput{
		Address:                      sv(c.Address),
		Namespace:                    sv(c.Namespace),
		Token:                        sv(c.Token),
		UnwrapToken:                  bv(c.UnwrapToken),
		SSLEnabled:                   bv(c.SSL.Enabled),
		SSLVerify:                    bv(c.SSL.Verify),
		SSLCert:                      sv(c.SSL.Cert),
		SSLKey:                       sv(c.SSL.Key),
		SSLCACert:                    sv(c.SSL.CaCert),
		SSLCACertBytes:               sv(c.SSL.CaCertBytes),
		SSLCAPath:                    sv(c.SSL.CaPath),
		ServerName:                   sv(c.SSL.ServerName),
		ClientUserAgent:              sv(c.ClientUserAgent),
		TransportCustomDialer:        c.Transport.CustomDialer,
		TransportDialKeepAlive:       dv(c.Transport.DialKeepAlive),
		TransportDialTimeout:         dv(c.Transport.DialTimeout),
		TransportDisableKeepAlives:   bv(c.Transport.DisableKeepAlives),
		TransportIdleConnTimeout:     dv(c.Transport.IdleConnTimeout),
		TransportMaxIdleConns:        iv(c.Transport.MaxIdleConns),
		TransportMaxIdleConnsPerHost: iv(c.Transport.MaxIdleConnsPerHost),
		TransportMaxConnsPerHost:     iv(c.Transport.MaxConnsPerHost),
		TransportTLSHandshakeTimeout: dv(c.Transport.TLSHandshakeTimeout),
		K8SAuthRoleName:              sv(c.K8SAuthRoleName),
		K8SServiceAccountTokenPath:   sv(c.K8SServiceAccountTokenPath),
		K8SServiceAccountToken:       sv(c.K8SServiceAccountToken),
		K8SServiceMountPath:          sv(c.K8SServiceMountPath),
	}
}

// Run receives the watcher's answers until ctx ends, calling changed after each new one. It
// returns the error of a secret (or of the token's renewal) whose retries are exhausted:
// consul-template stops on it. Errors that are retried are logged; neither names a value.
func (v *Vault) Run(ctx context.Context, changed func()) error {
	defer v.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case view := <-v.w.DataCh():
			n := view.Dependency().String()
			v.mu.Lock()
			_, ok := v.watched[n]
			if ok { // not dropped by Retain meanwhile
				v.data[n] = vaultAnswer{d: view.Dependency(), data: view.Data()}
			}
			v.mu.Unlock()
			if !ok {
				continue
			}
			v.log.Debug("vault answered", "dependency", view.Dependency().String())
			changed()
		case err := <-v.w.ErrCh():
			return plain(err)
		case err := <-v.w.ServerErrCh():
			v.log.Warn("vault request failed", "err", plain(err))
		case err := <-v.tokens.ErrCh():
			return plain(err)
		case err := <-v.tokens.ServerErrCh():
			v.log.Warn("vault token renewal failed", "err", plain(err))
		}
	}
}

// plain hides the stack trace that consul-template's errors (github.com/pkg/errors) print
// under %+v, as slog formats them: the message alone, as consul-template logs it.
func plain(err error) error { return fmt.Errorf("%w", err) }

// Stop stops every read and renewal.
func (v *Vault) Stop() {
	v.stop.Do(func() {
		close(v.done)
		v.tokens.Stop()
		v.w.Stop() // also closes the clients' connections
	})
}

// want starts watching d (a dependency a render is missing).
func (v *Vault) want(d dep.Dependency) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.watched[d.String()]; ok {
		return
	}
	if _, err := v.w.Add(d); err != nil {
		v.log.Error("vault watch", "dependency", d.String(), "err", err)
		return
	}
	v.watched[d.String()] = d
}

// Retain stops watching, and forgets the answers of, every dependency not named in used (the
// Vault dependencies of the last pass, Deps.Vault), as consul-template's runner drops the
// dependencies its templates no longer use.
func (v *Vault) Retain(used []string) {
	keep := map[string]bool{}
	for _, n := range used {
		keep[n] = true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for n, d := range v.watched {
		if !keep[n] {
			v.w.Remove(d)
			delete(v.watched, n)
			delete(v.data, n)
		}
	}
}

// brain is consul-template's Brain holding every answer received so far, with the secret
// values in them (to scrub from errors).
func (v *Vault) brain() (*cttemplate.Brain, []string) {
	b := cttemplate.NewBrain()
	var vals []string
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, a := range v.data {
		b.Remember(a.d, a.data)
		switch d := a.data.(type) {
		case *dep.Secret:
			vals = leaves(vals, d.Data)
		case dep.PemEncoded:
			vals = append(vals, d.Key, d.Cert)
		}
	}
	return b, vals
}

// leaves appends the values in x (a secret's data: maps, lists, strings, numbers).
func leaves(vals []string, x any) []string {
	switch x := x.(type) {
	case nil:
	case map[string]any:
		for _, e := range x {
			vals = leaves(vals, e)
		}
	case []any:
		for _, e := range x {
			vals = leaves(vals, e)
		}
	case string:
		vals = append(vals, x)
	default:
		vals = append(vals, fmt.Sprint(x))
	}
	return vals
}

// minSecretLen is the shortest secret value scrubbed from errors: shorter ones ("1", "true")
// would mangle every message and keep nothing secret.
const minSecretLen = 4

// scrubber replaces the secret values of a pass's Vault answers in error messages with
// consul-template's "[redacted]". consul-template redacts only the top-level values of a
// secret's .Data, so a KV v2 value (under .Data.data) would show in its error.
func scrubber(vals []string) *strings.Replacer {
	vals = slices.DeleteFunc(slices.Clone(vals), func(v string) bool { return len(v) < minSecretLen })
	if len(vals) == 0 {
		return nil
	}
	// Longest first, so that a value inside another goes after it.
	slices.SortFunc(vals, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range slices.Compact(vals) {
		pairs = append(pairs, v, "[redacted]")
	}
	return strings.NewReplacer(pairs...)
}

// scrubbedError is an error whose message had secret values taken out.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with the pass's secret values taken out of its message.
func (p *Pass) scrub(err error) error {
	p.vaultBrain()
	if err == nil || p.scrubber == nil {
		return err
	}
	msg := err.Error()
	if clean := p.scrubber.Replace(msg); clean != msg {
		return &scrubbedError{msg: clean, err: err}
	}
	return err
}

// vaultDeps records the Vault dependencies a render used and waits for those not answered
// yet, which the Vault starts watching (consul-template's runner adds its missing
// dependencies to its watcher).
func (rs *renderState) vaultDeps(out *cttemplate.ExecuteResult) {
	for _, d := range out.Used.List() {
		if d.Type() == dep.TypeVault {
			rs.deps.vault = append(rs.deps.vault, d.String())
		}
	}
	for _, d := range out.Missing.List() {
		if d.Type() != dep.TypeVault {
			continue
		}
		rs.wait(d)
		if v := rs.pass.store.Vault; v != nil {
			v.want(d)
		}
	}
}

// Watching names the dependencies being watched, sorted.
func (v *Vault) Watching() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Sorted(maps.Keys(v.watched))
}
