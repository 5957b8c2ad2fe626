package resource

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/file"
)

// secretFile is the file backend saying that its values are secrets (as the vault backend
// does), or not: the pipeline's secret handling is pure logic over HoldsSecrets.
type secretFile struct {
	*file.Client
	secrets bool
}

func (s secretFile) HoldsSecrets() bool { return s.secrets }

var _ backends.SecretHolder = secretFile{}

const secretValue = "hunter2-s3cret"

// secretStore writes a data file holding a password and returns the backend over it.
func secretStore(t *testing.T, secrets bool, password string) secretFile {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.yaml")
	must(t, os.WriteFile(p, []byte("db:\n  user: app\n  password: "+password+"\n"), 0o644))
	c, err := file.New(file.Config{Files: []string{p}})
	must(t, err)
	return secretFile{Client: c, secrets: secrets}
}

func TestSecretDestinationMode(t *testing.T) {
	f := newFixture(t)
	tmpl := "user={{getv \"/db/user\"}}\npassword={{getv \"/db/password\"}}\n"
	dest := f.dest("app.conf")
	r := f.one(`[template]
src = "r.tmpl"
dest = "`+dest+`"
keys = ["/db"]
`, tmpl)
	// An existing file's 0644 is not kept: the secret would stay readable to all.
	must(t, os.WriteFile(dest, []byte("old\n"), 0o644))
	for _, pw := range []string{secretValue, secretValue + "-2"} {
		if _, err := r.Sync(context.Background(), secretStore(t, true, pw), f.opts()); err != nil {
			t.Fatal(err)
		}
		if got := readString(t, dest); !strings.Contains(got, "password="+pw) {
			t.Fatalf("dest = %q", got)
		}
		if m := modeOf(t, dest); m != 0o600 {
			t.Fatalf("secret dest mode %#o, want 0600", m)
		}
	}
	if n := strings.Count(f.log.String(), "written 0600"); n != 1 {
		t.Errorf("the 0600 default was logged %d times, want once:\n%s", n, f.log.String())
	}
	if strings.Contains(f.log.String(), secretValue) {
		t.Errorf("the secret was logged:\n%s", f.log.String())
	}

	// A mode of its own wins; a backend that holds no secrets keeps confd's 0644.
	for _, c := range []struct {
		extra   string
		secrets bool
		want    os.FileMode
	}{{"mode = \"0640\"\n", true, 0o640}, {"", false, 0o644}} {
		f := newFixture(t)
		dest := f.dest("app.conf")
		r := f.one("[template]\nsrc = \"r.tmpl\"\ndest = \""+dest+"\"\nkeys = [\"/db\"]\n"+c.extra, tmpl)
		if _, err := r.Sync(context.Background(), secretStore(t, c.secrets, secretValue), f.opts()); err != nil {
			t.Fatal(err)
		}
		if m := modeOf(t, dest); m != c.want {
			t.Errorf("mode %q, secrets %v: dest mode %#o, want %#o", c.extra, c.secrets, m, c.want)
		}
		if strings.Contains(f.log.String(), "written 0600") {
			t.Errorf("mode %q, secrets %v: logged the 0600 default:\n%s", c.extra, c.secrets, f.log.String())
		}
	}
}

func TestSecretNoopDiff(t *testing.T) {
	for _, secrets := range []bool{true, false} {
		f := newFixture(t)
		dest := f.dest("app.conf")
		r := f.one("[template]\nsrc = \"r.tmpl\"\ndest = \""+dest+"\"\nkeys = [\"/db\"]\nmode = \"0600\"\n",
			"# app\nuser={{getv \"/db/user\"}}\npassword={{getv \"/db/password\"}}\nend\n")
		must(t, os.WriteFile(dest, []byte("# app\nuser=app\npassword=old-pass-123\nend\n"), 0o600))
		o := f.opts()
		out := o.Out.(*bytes.Buffer)
		o.Noop = true
		res, err := r.Sync(context.Background(), secretStore(t, secrets, secretValue), o)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.Written || readString(t, dest) != "# app\nuser=app\npassword=old-pass-123\nend\n" {
			t.Fatalf("secrets %v: noop changed=%v written=%v", secrets, res.Changed, res.Written)
		}
		if out.String() != res.Diff {
			t.Errorf("secrets %v: printed diff differs from Result.Diff", secrets)
		}
		if !secrets {
			if !strings.Contains(res.Diff, "+password="+secretValue) {
				t.Errorf("plain diff lacks the changed line:\n%s", res.Diff)
			}
			continue
		}
		want := "--- " + dest + "\n+++ " + dest + " (rendered)\n@@ -3 +3 @@\n" +
			"# 1 line removed, 1 line added (not shown: the resource reads secrets)\n"
		if res.Diff != want {
			t.Errorf("secret diff:\n%s\nwant\n%s", res.Diff, want)
		}
	}
}

func TestRedactedDiff(t *testing.T) {
	for _, c := range []struct{ name, old, new, want string }{
		{"equal", "a\n", "a\n", ""},
		{"new file", "", "a\nb\n", "@@ -0,0 +1,2 @@\n# 0 lines removed, 2 lines added"},
		{"two hunks", "a\nb\nc\nd\ne\nf\ng\nh\ni\n", "a\nB\nc\nd\ne\nf\ng\ni\n",
			"@@ -2 +2 @@\n# 1 line removed, 1 line added" + note + "@@ -8 +7,0 @@\n# 1 line removed, 0 lines added"},
	} {
		got := redactedDiff("x", "y", []byte(c.old), []byte(c.new))
		if c.want != "" {
			c.want = "--- x\n+++ y\n" + c.want + note
		}
		if got != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

const note = " (not shown: the resource reads secrets)\n"

func TestSecretErrorsScrubbed(t *testing.T) {
	for _, c := range []struct {
		name, tmpl, extra string
		sentinel          error
	}{
		{"render", "{{atoi (getv \"/db/password\")}}\n", "", ErrRender},
		{"check_cmd", "password={{getv \"/db/password\"}}\n", "check_cmd = \"/bin/sh -c 'cat {{.src}}; exit 3'\"\n", ErrCheck},
	} {
		for _, secrets := range []bool{false, true} {
			f := newFixture(t)
			dest := f.dest("app.conf")
			r := f.one("[template]\nsrc = \"r.tmpl\"\ndest = \""+dest+"\"\nkeys = [\"/db\"]\n"+c.extra, c.tmpl)
			_, err := r.Sync(context.Background(), secretStore(t, secrets, secretValue), f.opts())
			if !errors.Is(err, c.sentinel) {
				t.Fatalf("%s, secrets %v: err %v, want %v", c.name, secrets, err, c.sentinel)
			}
			if shown := strings.Contains(err.Error(), secretValue); shown == secrets {
				t.Errorf("%s, secrets %v: the value shown in the error: %v", c.name, secrets, shown)
			}
			if secrets && !strings.Contains(err.Error(), redacted) {
				t.Errorf("%s: no %s in %v", c.name, redacted, err)
			}
			if _, statErr := os.Stat(dest); statErr == nil {
				t.Errorf("%s, secrets %v: dest written", c.name, secrets)
			}
		}
	}
}

func TestUnknownBackend(t *testing.T) {
	f := newFixture(t)
	f.file("templates/r.tmpl", "x\n")
	p := f.file("conf.d/r.toml", "[template]\nsrc = \"r.tmpl\"\ndest = \"/tmp/x\"\n\nbackend = \"secret\"\n")
	_, err := f.load(Defaults{Backends: []string{"kv", "secrets"}})
	want := p + `: invalid template resource: line 5: template.backend: unknown backend "secret" (known: default, kv, secrets)`
	if err == nil || err.Error() != want {
		t.Fatalf("err %v\nwant %s", err, want)
	}
	for name, want := range map[string]string{"secrets": "secrets", "default": "", "": ""} {
		f.file("conf.d/r.toml", "[template]\nsrc = \"r.tmpl\"\ndest = \"/tmp/x\"\nbackend = \""+name+"\"\n")
		rs, err := f.load(Defaults{Backends: []string{"kv", "secrets"}})
		if err != nil || len(rs) != 1 || rs[0].Backend != want {
			t.Errorf("backend %q: %v, %v", name, rs, err)
		}
	}
}

// Write (a Dynamic resource's rendered content) scrubs the content's lines from its errors.
func TestSecretWriteScrubbed(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	r := f.one("[template]\nsrc = \"r.tmpl\"\ndest = \""+dest+"\"\ncheck_cmd = \"/bin/sh -c 'cat {{.src}}; exit 3'\"\n", "x\n")
	content := []byte("user=app\n  password=" + secretValue + "\n")
	for _, secrets := range []bool{false, true} {
		o := f.opts()
		o.Secrets = secrets
		_, _, err := r.Write(context.Background(), content, o)
		if !errors.Is(err, ErrCheck) {
			t.Fatalf("secrets %v: err %v", secrets, err)
		}
		if shown := strings.Contains(err.Error(), secretValue); shown == secrets {
			t.Errorf("secrets %v: the line shown in the error: %v (%v)", secrets, shown, err)
		}
	}
}
