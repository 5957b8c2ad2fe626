package ct_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template/ct"
)

// fakeServices is a template.Services over a fixed list of instances, answering as package
// discovery does (instances of a name sorted by ID, filtered by tag), except that its tag
// unions are neither sorted nor deduplicated, so that the tests see ct do it.
type fakeServices struct {
	instances []backends.Service
	err       error

	mu    sync.Mutex
	calls map[string]int
}

func (f *fakeServices) count(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[what]++
}

func (f *fakeServices) Service(_ context.Context, name, tag, dc string) ([]backends.Service, error) {
	f.count("service " + tag + "." + name + "@" + dc)
	if f.err != nil {
		return nil, f.err
	}
	out := []backends.Service{}
	for _, s := range f.instances {
		if s.Name == name && (tag == "" || slices.Contains(s.Tags, tag)) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b backends.Service) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeServices) ServiceNames(context.Context) (map[string][]string, error) {
	f.count("names")
	if f.err != nil {
		return nil, f.err
	}
	out := map[string][]string{}
	for _, s := range f.instances {
		out[s.Name] = append(out[s.Name], s.Tags...)
	}
	return out, nil
}

func fixture() *fakeServices {
	return &fakeServices{instances: []backends.Service{
		{ID: "web-2", Name: "web", Address: "10.0.0.6", Port: 8080, Tags: []string{"v2", "blue", "v2"}, Node: "host-a"},
		{ID: "web-1", Name: "web", Address: "10.0.0.5", Port: 8080, Tags: []string{"v1"}, Meta: map[string]string{"zone": "a"}, Node: "host-b"},
		{ID: "web-3", Name: "web", Address: "10.0.0.7", Port: 9090, Tags: []string{"v2"}}, // no node
		{ID: "db-1", Name: "db", Address: "10.0.0.9", Port: 5432, Node: "host-a"},
		{ID: "cache", Name: "cache", Address: "cache.internal", Port: 6379, Tags: []string{"lru"}},
	}}
}

func render(t *testing.T, st *ct.Store, contents string) (ct.Result, string, error) {
	t.Helper()
	tmpl, err := ct.New(ct.Config{Contents: contents})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	res, err := tmpl.Render(context.Background(), st.Pass())
	return res, string(res.Output), err
}

func mustRender(t *testing.T, st *ct.Store, contents string) string {
	t.Helper()
	res, out, err := render(t, st, contents)
	if err != nil {
		t.Fatalf("render %q: %v", contents, err)
	}
	if !res.Deps.Services {
		t.Errorf("render %q: Deps.Services is false", contents)
	}
	return out
}

func TestConventionService(t *testing.T) {
	st := &ct.Store{Services: fixture()}
	got := mustRender(t, st, `{{range service "web"}}{{.Node}} {{.NodeAddress}} {{.ID}} {{.Name}} `+
		`{{.Address}}:{{.Port}} {{.Tags}} {{.Status}} {{len .Checks}} {{.Checks.AggregatedStatus}} `+
		`{{.Weights.Passing}}/{{.Weights.Warning}} [{{.NodeID}}] {{.ServiceMeta.zone}} {{len .NodeMeta}} `+
		`{{.NodeTaggedAddresses.lan}} {{.NodeTaggedAddresses.wan_ipv4}}
{{end}}`)
	// Sorted by node then ID (web-3 has no node: its address is its node); tags sorted, deduped.
	want := `10.0.0.7 10.0.0.7 web-3 web 10.0.0.7:9090 [v2] passing 0 passing 1/1 []  0 10.0.0.7 10.0.0.7
host-a 10.0.0.6 web-2 web 10.0.0.6:8080 [blue v2 v2] passing 0 passing 1/1 []  0 10.0.0.6 10.0.0.6
host-b 10.0.0.5 web-1 web 10.0.0.5:8080 [v1] passing 0 passing 1/1 [] a 0 10.0.0.5 10.0.0.5
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Checks is an empty list, not null, as Consul answers; Meta maps likewise.
	got = mustRender(t, st, `{{range service "db"}}{{printf "%#v %#v %#v" .Checks .ServiceMeta .Tags}}{{end}}`)
	if want := `api.HealthChecks{} map[string]string{} dependency.ServiceTags{}`; got != want {
		t.Errorf("db as JSON: got %q, want %q", got, want)
	}
}

func TestConventionServiceQueries(t *testing.T) {
	st := &ct.Store{Services: fixture()}
	for _, c := range []struct{ tmpl, want string }{
		{`{{range service "v2.web"}}{{.ID}} {{end}}`, "web-3 web-2 "},
		{`{{range service "blue.web"}}{{.ID}} {{end}}`, "web-2 "},
		{`{{range service "nope.web"}}{{.ID}} {{end}}`, ""},
		{`{{range service "missing"}}{{.ID}} {{end}}`, ""},
		{`{{range service "web|any"}}{{.ID}} {{end}}`, "web-3 web-2 web-1 "},
		{`{{range service "web" "any"}}{{.ID}} {{end}}`, "web-3 web-2 web-1 "},
		{`{{range service "web|passing,warning"}}{{.ID}} {{end}}`, "web-3 web-2 web-1 "},
		{`{{range service "web|critical"}}{{.ID}} {{end}}`, ""},
		{`{{range service "web|warning,maintenance"}}{{.ID}} {{end}}`, ""},
		{`{{range service "web~host-b"}}{{.ID}} {{end}}`, "web-3 web-2 web-1 "}, // near: no coordinates, order kept
		{`{{range service "cache"}}{{.Node}} {{.Address}} {{.NodeTaggedAddresses}}{{end}}`,
			`cache.internal cache.internal map[lan:cache.internal wan:cache.internal]`},
	} {
		got := mustRender(t, st, c.tmpl)
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.tmpl, got, c.want)
		}
	}
}

func TestConventionServices(t *testing.T) {
	st := &ct.Store{Services: fixture()}
	got := mustRender(t, st, `{{range services}}{{.Name}}:{{.Tags}} {{end}}`)
	if want := "cache:[lru] db:[] web:[blue v1 v2] "; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	got = mustRender(t, st, `{{printf "%#v" (index services 1).Tags}}`)
	if want := "dependency.ServiceTags{}"; got != want {
		t.Errorf("db's tags as JSON: got %q, want %q", got, want)
	}
	got = mustRender(t, &ct.Store{Services: &fakeServices{}}, `{{services | len}}`)
	if got != "0" {
		t.Errorf("no services: got %q", got)
	}
}

func TestConventionNodes(t *testing.T) {
	st := &ct.Store{Services: fixture()}
	got := mustRender(t, st, `{{range nodes}}{{.Node}} {{.Address}} [{{.ID}}] [{{.Datacenter}}] {{.TaggedAddresses.lan}}
{{end}}`)
	want := `10.0.0.7 10.0.0.7 [] [] 10.0.0.7
cache.internal cache.internal [] [] cache.internal
host-a 10.0.0.6 [] [] 10.0.0.6
host-b 10.0.0.5 [] [] 10.0.0.5
`
	if got != want {
		t.Errorf("nodes: got:\n%s\nwant:\n%s", got, want)
	}

	got = mustRender(t, st, `{{with node "host-a"}}{{.Node.Node}} {{.Node.Address}}:{{range .Services}} {{.Service}}/{{.ID}} {{.Address}}:{{.Port}} {{.Tags}}{{end}}{{end}}`)
	if want := "host-a 10.0.0.6: db/db-1 10.0.0.9:5432 [] web/web-2 10.0.0.6:8080 [blue v2 v2]"; got != want {
		t.Errorf("node host-a: got %q, want %q", got, want)
	}
	// An unknown node: consul-template's empty CatalogNode.
	got = mustRender(t, st, `{{with node "nope"}}{{if .Node}}found{{else}}none {{len .Services}}{{end}}{{end}}`)
	if want := "none 0"; got != want {
		t.Errorf("node nope: got %q, want %q", got, want)
	}
}

// TestConventionLocalNode: `node` without a name is the node named by this host's name.
func TestConventionLocalNode(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	f := fixture()
	f.instances = append(f.instances, backends.Service{ID: "local-1", Name: "local", Address: "127.0.0.1", Port: 1, Node: host})
	got := mustRender(t, &ct.Store{Services: f}, `{{with node}}{{.Node.Node}}{{range .Services}} {{.ID}}{{end}}{{end}}`)
	if want := host + " local-1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestConventionConsulOnly: datacenters, namespaces and the like are errors naming them.
func TestConventionConsulOnly(t *testing.T) {
	st := &ct.Store{Services: fixture()}
	for _, c := range []struct{ tmpl, want string }{
		{`{{service "web@dc2"}}`, `datacenter "dc2"`},
		{`{{service "v2.web@dc2|any"}}`, `datacenter "dc2"`},
		{`{{service "web?ns=team"}}`, `query "ns=team"`},
		{`{{services "@dc2"}}`, `datacenter "dc2"`},
		{`{{nodes "@dc2"}}`, `datacenter "dc2"`},
		{`{{node "host-a@dc2"}}`, `datacenter "dc2"`},
		{`{{datacenters}}`, "datacenters exist only on Consul"},
		{`{{datacenters true}}`, "datacenters exist only on Consul"},
		{`{{service "web|bogus"}}`, `invalid filter: "bogus"`}, // consul-template's own parse
	} {
		_, out, err := render(t, st, c.tmpl)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %q, %v; want an error containing %q", c.tmpl, out, err, c.want)
		}
	}
}

func TestConventionErrors(t *testing.T) {
	// No discovery at all (consul-template's engine keeps only the text of a function's error).
	for _, tmpl := range []string{`{{service "web"}}`, `{{services}}`, `{{nodes}}`, `{{node "a"}}`, `{{datacenters}}`} {
		_, _, err := render(t, &ct.Store{}, tmpl)
		if err == nil || !strings.Contains(err.Error(), backends.ErrNoDiscovery.Error()) {
			t.Errorf("%s without Services: got %v, want ErrNoDiscovery", tmpl, err)
		}
	}
	// A store error fails the render: no partial output.
	boom := errors.New("boom")
	for _, tmpl := range []string{`{{service "web"}}`, `{{services}}`, `{{nodes}}`, `{{node "a"}}`} {
		res, _, err := render(t, &ct.Store{Services: &fakeServices{err: boom}}, tmpl)
		if !errors.Is(err, boom) || res.Output != nil {
			t.Errorf("%s on a failing store: got %q, %v; want no output and boom", tmpl, res.Output, err)
		}
	}
}

// TestConventionMemo: a pass asks the store once per question, however many templates and
// calls ask it.
func TestConventionMemo(t *testing.T) {
	f := fixture()
	st := &ct.Store{Services: f}
	p := st.Pass()
	for range 2 {
		tmpl, err := ct.New(ct.Config{Contents: `{{service "web"}}{{service "web|any"}}{{service "v2.web"}}{{services}}{{nodes}}{{node "host-a"}}`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmpl.Render(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	for what, n := range f.calls {
		if n != 1 {
			t.Errorf("%s asked %d times, want 1", what, n)
		}
	}
	if f.calls["service .web@"] != 1 || f.calls["service v2.web@"] != 1 || f.calls["names"] != 1 {
		t.Errorf("calls = %v", f.calls)
	}
}
