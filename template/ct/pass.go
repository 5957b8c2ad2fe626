package ct

import (
	"context"
	"regexp"
	"strings"
	"sync"

	dep "github.com/hashicorp/consul-template/dependency"
	cttemplate "github.com/hashicorp/consul-template/template"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template"
)

// Store is where renders read from: one per process (per backend), long-lived.
type Store struct {
	// KV is the backend keys are read from.
	KV backends.Backend
	// Services answers service and services from reconf's key convention (package discovery)
	// when Consul is nil.
	Services template.Services
	// Consul, when set, is the Consul agent: keys, services and the catalog are read through
	// consul-template's own queries, so that every field comes out as consul-template gives it.
	Consul *dep.ClientSet
	// Env is added to the environment `env` sees (it wins over the process's).
	Env []string
	// Vault, when set, answers secret, secrets and pkiCert; without it they fail as not
	// available.
	Vault *Vault
}

// Pass is one round of renders over a set of templates: it memoizes every read, so that the
// templates of one pass see one view of the stores. Safe for concurrent use.
type Pass struct {
	store *Store
	mu    sync.Mutex
	kv    map[string]answer // backend prefix → what Get returned
	dep   map[string]answer // consul-template dependency → what its Fetch returned
	brain *cttemplate.Brain // the Vault answers this pass sees (nil until asked)
	// scrubber takes the values of those answers out of error messages (nil: none).
	scrubber *strings.Replacer
}

type answer struct {
	kv   map[string]string
	data any
	err  error
}

// Pass starts a pass.
func (s *Store) Pass() *Pass {
	return &Pass{store: s, kv: map[string]answer{}, dep: map[string]answer{}}
}

// get reads prefix (absolute, cleaned) from the backend, once per pass.
func (p *Pass) get(ctx context.Context, prefix string) (map[string]string, error) {
	p.mu.Lock()
	a, ok := p.kv[prefix]
	p.mu.Unlock()
	if ok {
		return a.kv, a.err
	}
	kv, err := p.store.KV.Get(ctx, []string{prefix})
	p.mu.Lock()
	p.kv[prefix] = answer{kv: kv, err: err}
	p.mu.Unlock()
	return kv, err
}

// fetch runs a consul-template query against Consul, once per pass per query.
func (p *Pass) fetch(d dep.Dependency) (any, error) {
	key := d.String()
	p.mu.Lock()
	a, ok := p.dep[key]
	p.mu.Unlock()
	if ok {
		return a.data, a.err
	}
	data, _, err := d.Fetch(p.store.Consul, &dep.QueryOptions{})
	p.mu.Lock()
	p.dep[key] = answer{data: data, err: err}
	p.mu.Unlock()
	return data, err
}

// vaultBrain is the Brain every template of the pass reads its Vault answers from: one
// snapshot of the answers received so far.
func (p *Pass) vaultBrain() *cttemplate.Brain {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.brain == nil {
		if p.store.Vault == nil {
			p.brain = cttemplate.NewBrain()
		} else {
			var vals []string
			p.brain, vals = p.store.Vault.brain()
			p.scrubber = scrubber(vals)
		}
	}
	return p.brain
}

// match returns the named groups of re in s (consul-template's own parse of its arguments).
func match(re *regexp.Regexp, s string) map[string]string {
	m := re.FindStringSubmatch(s)
	out := map[string]string{}
	if m == nil {
		return out
	}
	for i, n := range re.SubexpNames() {
		if n != "" {
			out[n] = m[i]
		}
	}
	return out
}
