package ct_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/etcd"
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/template/ct"
)

// TestConventionEtcd renders consul-template's catalog functions from instances registered on a
// real etcd by reconf's key convention.
func TestConventionEtcd(t *testing.T) {
	srv := testservers.Etcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put := func(k, v string) {
		t.Helper()
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	for _, s := range []backends.Service{
		{ID: "web-2", Name: "web", Address: "10.0.0.6", Port: 8080, Tags: []string{"v2", "blue"}, Node: "host-a"},
		{ID: "web-1", Name: "web", Address: "10.0.0.5", Port: 8080, Tags: []string{"v1"}, Node: "host-b"},
		{ID: "db-1", Name: "db", Address: "10.0.0.9", Port: 5432, Tags: []string{"primary"}, Node: "host-a"},
	} {
		b, err := discovery.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		put(discovery.Key("", s.Name, s.ID), string(b))
	}
	put("/services/web/web-0", "10.0.0.4:8081")   // written by hand: no node, no tags
	put("/services/web/broken", "not an address") // skipped with a warning
	put("/app/name", "shop")

	b, err := etcd.New(etcd.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := &ct.Store{KV: b, Services: discovery.New(b, discovery.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})}

	for _, c := range []struct{ tmpl, want string }{
		{`{{key "app/name"}}:{{range service "web"}} {{.ID}} {{.Address}}:{{.Port}} {{.Tags}} {{.Status}}{{end}}`,
			"shop: web-0 10.0.0.4:8081 [] passing web-2 10.0.0.6:8080 [blue v2] passing web-1 10.0.0.5:8080 [v1] passing"},
		{`{{range services}}{{.Name}}:{{.Tags}} {{end}}`, "db:[primary] web:[blue v1 v2] "},
		{`{{range service "v2.web"}}{{.ID}}@{{.Node}} {{end}}`, "web-2@host-a "},
		{`{{range nodes}}{{.Node}}={{.Address}} {{end}}`, "10.0.0.4=10.0.0.4 host-a=10.0.0.6 host-b=10.0.0.5 "},
		{`{{with node "host-a"}}{{range .Services}}{{.Service}}/{{.ID}} {{end}}{{end}}`, "db/db-1 web/web-2 "},
	} {
		tmpl, err := ct.New(ct.Config{Contents: c.tmpl})
		if err != nil {
			t.Fatalf("New(%q): %v", c.tmpl, err)
		}
		res, err := tmpl.Render(ctx, st.Pass())
		if err != nil {
			t.Fatalf("Render(%q): %v", c.tmpl, err)
		}
		if got := string(res.Output); got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.tmpl, got, c.want)
		}
		if !res.Deps.Services {
			t.Errorf("%s: Deps.Services is false", c.tmpl)
		}
	}

	tmpl, err := ct.New(ct.Config{Contents: `{{service "web@dc2"}}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Render(ctx, st.Pass()); err == nil {
		t.Error(`service "web@dc2" on etcd: no error`)
	}
}
