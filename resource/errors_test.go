package resource

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestErrorShapes: an error names the resource once, the template file and line once, the key
// once.
func TestErrorShapes(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	r := f.one(tomlFor(dest, ""), "line 1\n{{getv \"/db/user\"}}\n")
	_, err := r.Apply(context.Background(), prodKV, f.opts())
	if want := "resource r.toml: render failed: r.tmpl:2:2: getv: key does not exist: /db/user"; err == nil || err.Error() != want {
		t.Errorf("render: %v\nwant    %s", err, want)
	}
	if !errors.Is(err, ErrRender) {
		t.Errorf("render: %v is not ErrRender", err)
	}

	f.file("templates/part.tmpl", "{{getv \"/db/host\"}}\n{{getv \"/db/pass\"}}")
	r = f.one(tomlFor(dest, ""), "{{include \"part.tmpl\"}}\n")
	_, err = r.Apply(context.Background(), prodKV, f.opts())
	if want := "resource r.toml: render failed: r.tmpl:1:2: include: part.tmpl:2:2: getv: key does not exist: /db/pass"; err == nil || err.Error() != want {
		t.Errorf("render in a partial: %v\nwant    %s", err, want)
	}

	r = f.one(tomlFor(dest, "check_cmd = \"echo boom; exit 3\"\n"), "x\n")
	_, err = r.Apply(context.Background(), prodKV, f.opts())
	if want := "resource r.toml: check_cmd failed: exit status 3; output: boom"; err == nil || err.Error() != want {
		t.Errorf("check: %v\nwant    %s", err, want)
	}

	f.file("templates/bad.tmpl", "ok\n{{ if }}\n")
	f.file("conf.d/r.toml", "[template]\nsrc = \"bad.tmpl\"\ndest = \"/tmp/a\"\n")
	_, err = f.load(Defaults{})
	file := filepath.Join(f.confDir, "conf.d", "r.toml")
	if want := file + ": parse bad.tmpl:2: missing value for if"; err == nil || err.Error() != want {
		t.Errorf("load: %v\nwant  %s", err, want)
	}
}
