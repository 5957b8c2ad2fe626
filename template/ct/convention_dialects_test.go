package ct_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template"
	"github.com/reconf/reconf/template/ct"
)

// upstreams is consul-template's nginx upstream example, verbatim.
const upstreams = `{{range services}} {{$name := .Name}} {{$service := service .Name}}
  upstream {{$name}} {
    zone upstream-{{$name}} 64k;
    {{range $service}}
         server {{.Address}}:{{.Port}} max_fails=3 fail_timeout=60 weight=1;
    {{else}}server 127.0.0.1:65535; # force a 502
    {{end}}
  } {{end}}
`

// TestConventionBothDialects: the same consul-template template renders the same from the same
// instances in a consul-template template block and in a confd-style conf.d resource.
func TestConventionBothDialects(t *testing.T) {
	f := &fakeServices{instances: []backends.Service{
		{ID: "web-1", Name: "web", Address: "10.0.0.5", Port: 8080, Tags: []string{"v1"}, Node: "host-a"},
		{ID: "web-2", Name: "web", Address: "10.0.0.6", Port: 8080, Tags: []string{"v2", "v2"}, Node: "host-a"},
		{ID: "db-1", Name: "db", Address: "10.0.0.9", Port: 5432, Tags: []string{"primary"}},
	}}
	want := `  
  upstream db {
    zone upstream-db 64k;
    
         server 10.0.0.9:5432 max_fails=3 fail_timeout=60 weight=1;
    
  }   
  upstream web {
    zone upstream-web 64k;
    
         server 10.0.0.5:8080 max_fails=3 fail_timeout=60 weight=1;
    
         server 10.0.0.6:8080 max_fails=3 fail_timeout=60 weight=1;
    
  } 
`
	if got := mustRender(t, &ct.Store{Services: f}, upstreams); got != want {
		t.Errorf("consul-template dialect:\n%s\nwant:\n%s", got, want)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "upstreams.tmpl"), []byte(upstreams), 0o644); err != nil {
		t.Fatal(err)
	}
	tp, err := template.Parse(template.Config{Resource: "upstreams", Dir: dir, Src: "upstreams.tmpl"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tp.Render(context.Background(), template.Data{Services: f})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("confd dialect:\n%s\nwant:\n%s", out, want)
	}

	// The list of services has one shape in both dialects.
	const list = `{{range services}}{{.Name}}:{{.Tags}} {{end}}`
	if err := os.WriteFile(filepath.Join(dir, "list.tmpl"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	tp, err = template.Parse(template.Config{Resource: "list", Dir: dir, Src: "list.tmpl"})
	if err != nil {
		t.Fatal(err)
	}
	confd, err := tp.Render(context.Background(), template.Data{Services: f})
	if err != nil {
		t.Fatal(err)
	}
	if ctOut := mustRender(t, &ct.Store{Services: f}, list); string(confd) != ctOut || ctOut != "db:[primary] web:[v1 v2] " {
		t.Errorf("services: confd dialect %q, consul-template dialect %q, want both %q", confd, ctOut, "db:[primary] web:[v1 v2] ")
	}
}
