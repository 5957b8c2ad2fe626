package ct_test

import (
	"context"
	"strings"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template/ct"
)

// mapKV is a backends.Backend over a fixed map, answering Get by path as the backends do.
type mapKV map[string]string

func (m mapKV) Get(_ context.Context, prefixes []string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range m {
		for _, p := range prefixes {
			if backends.UnderPrefix(k, backends.CleanPrefix(p)) {
				out[k] = v
			}
		}
	}
	return out, nil
}

func (mapKV) Close() error { return nil }

// TestKVConsulOnly: off Consul, a key or listing that names a datacenter, namespace,
// partition, peer or sameness group is an error naming it, as for the catalog functions —
// not a read of another key.
func TestKVConsulOnly(t *testing.T) {
	st := &ct.Store{KV: mapKV{"/app/name": "web", "/app/db/host": "h"}}
	for _, c := range []struct{ tmpl, want string }{
		{`{{key "app/name@dc2"}}`, `datacenter "dc2"`},
		{`{{key "app/name?ns=team"}}`, `query "ns=team"`},
		{`{{keyExists "app/name?partition=p"}}`, `query "partition=p"`},
		{`{{keyOrDefault "app/name?ns=team" "d"}}`, `query "ns=team"`},
		{`{{ls "app?ns=team"}}`, `query "ns=team"`},
		{`{{tree "app@dc2"}}`, `datacenter "dc2"`},
	} {
		_, out, err := render(t, st, c.tmpl)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %q, %v; want an error containing %q", c.tmpl, out, err, c.want)
		}
	}
	_, got, err := render(t, st, `{{key "app/name"}} {{range ls "app"}}{{.Key}}{{end}} {{range tree "app"}}{{.Key}},{{end}}`)
	if err != nil || got != "web name db/host,name," {
		t.Errorf("got %q, %v", got, err)
	}
}
