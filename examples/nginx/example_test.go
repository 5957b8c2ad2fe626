package nginx

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	gotemplate "text/template"

	"github.com/BurntSushi/toml"
	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/file"
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/template"
)

var update = flag.Bool("update", false, "rewrite web.conf.expected")

type resourceFile struct {
	Template struct {
		Src       string   `toml:"src"`
		Dest      string   `toml:"dest"`
		Keys      []string `toml:"keys"`
		Mode      string   `toml:"mode"`
		CheckCmd  string   `toml:"check_cmd"`
		ReloadCmd string   `toml:"reload_cmd"`
	} `toml:"template"`
}

func loadResource(t *testing.T) resourceFile {
	t.Helper()
	var r resourceFile
	md, err := toml.DecodeFile(filepath.Join("conf.d", "nginx.toml"), &r)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("unknown keys in nginx.toml: %v", u)
	}
	return r
}

// render renders the example from a data file as reconf does with prefix "/".
func render(t *testing.T, r resourceFile, data string) []byte {
	t.Helper()
	b, err := file.New(file.Config{Files: []string{data}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var prefixes []string
	for _, k := range r.Template.Keys {
		prefixes = append(prefixes, backends.CleanPrefix(k))
	}
	kv, err := b.Get(ctx, prefixes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.Parse(template.Config{Resource: "nginx.toml", Dir: "templates", Src: r.Template.Src})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(ctx, template.Data{KV: kv, Services: discovery.New(b, discovery.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// check runs the example's check_cmd on a staged file as reconf does (/bin/sh -c, {{.src}}).
func check(t *testing.T, r resourceFile, staged []byte) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatalf("nginx is required (apt-get install nginx): %v", err)
	}
	src := filepath.Join(t.TempDir(), ".web.conf123")
	if err := os.WriteFile(src, staged, 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd bytes.Buffer
	tm := gotemplate.Must(gotemplate.New("check_cmd").Parse(r.Template.CheckCmd))
	if err := tm.Execute(&cmd, map[string]string{"src": src, "dest": r.Template.Dest}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", cmd.String()).CombinedOutput()
	return string(out), err
}

func TestExampleRendersAndPassesNginx(t *testing.T) {
	r := loadResource(t)
	if r.Template.ReloadCmd != "nginx -s reload" || r.Template.Dest != "/etc/nginx/conf.d/web.conf" {
		t.Errorf("resource: %+v", r.Template)
	}
	got := render(t, r, "data.yaml")
	if *update {
		if err := os.WriteFile("web.conf.expected", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("web.conf.expected")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("rendered web.conf differs from web.conf.expected (go test -update to accept):\n%s", got)
	}
	for _, line := range []string{
		"server 10.0.1.11:8080 weight=3 max_fails=1 fail_timeout=2s; # web-1",
		"server 10.0.1.13:8080 max_fails=1 fail_timeout=2s; # web-3",
		"server 10.0.9.99:8080 max_fails=1 fail_timeout=2s backup; # web-9",
		"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
	} {
		if !strings.Contains(string(got), line) {
			t.Errorf("rendered file lacks %q", line)
		}
	}
	if out, err := check(t, r, got); err != nil {
		t.Fatalf("check_cmd (nginx -t) rejected the rendered file: %v\n%s", err, out)
	}
	// A broken fragment is refused: the check really runs nginx.
	broken := append(append([]byte(nil), got...), []byte("upstream web { server ; }\n")...)
	if out, err := check(t, r, broken); err == nil {
		t.Fatalf("check_cmd accepted a broken file:\n%s", out)
	}
}

func TestExampleWithoutInstancesStaysValid(t *testing.T) {
	r := loadResource(t)
	data := filepath.Join(t.TempDir(), "data.yaml")
	if err := os.WriteFile(data, []byte("nginx:\n  listen: \"8081\"\n  access_log: \"off\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := render(t, r, data)
	if !strings.Contains(string(got), "server 127.0.0.1:9 down;") || !strings.Contains(string(got), "listen 8081;") {
		t.Fatalf("no fallback server:\n%s", got)
	}
	if out, err := check(t, r, got); err != nil {
		t.Fatalf("check_cmd rejected the empty upstream: %v\n%s", err, out)
	}
}
