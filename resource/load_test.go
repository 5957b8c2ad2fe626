package resource

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadFields(t *testing.T) {
	f := newFixture(t)
	f.file("templates/a.tmpl", "a\n")
	f.file("conf.d/sub/b.toml", `[template]
src = "a.tmpl"
dest = "/tmp/b"
`)
	f.file("conf.d/a.toml", `[template]
src = "a.tmpl"
dest = "/tmp/a"
keys = ["/db", "/app/*", "/db/host"]
prefix = "prod"
mode = "0640"
uid = 12
owner = "root"
group = "root"
check_cmd = "true {{.src}}"
reload_cmd = "true {{.dest}}"
wait = "1s:3s"
check_timeout = "5s"
reload_timeout = 7
left_delimiter = "[["
right_delimiter = "]]"
missingkey = "error"
`)
	f.file("conf.d/ignored.txt", "not toml")
	rs, err := f.load(Defaults{CheckTimeout: time.Minute, Wait: Wait{Min: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Name != "a.toml" || rs[1].Name != "sub/b.toml" {
		t.Fatalf("loaded %d resources, want a.toml and sub/b.toml in order", len(rs))
	}
	a, b := rs[0], rs[1]
	if a.Prefix != "/prod" || !a.ModeSet || a.Mode != 0o640 || a.UID != 12 || a.GID != 0 ||
		a.Wait != (Wait{time.Second, 3 * time.Second}) || a.CheckTimeout != 5*time.Second ||
		a.ReloadTimeout != 7*time.Second || a.MissingKey != "error" || a.LeftDelim != "[[" {
		t.Errorf("a.toml loaded as %+v", *a)
	}
	if got, want := a.Prefixes(), []string{"/prod/app", "/prod/db"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Prefixes() = %v, want %v", got, want)
	}
	if b.Prefix != "/" || b.ModeSet || b.UID != -1 || b.GID != -1 || b.Wait != (Wait{Min: time.Millisecond}) ||
		b.CheckTimeout != time.Minute || b.ReloadTimeout != DefaultReloadTimeout || b.Tmpl == nil {
		t.Errorf("sub/b.toml loaded as %+v", *b)
	}
	if b.Prefixes() != nil {
		t.Errorf("no keys: Prefixes() = %v, want none", b.Prefixes())
	}
}

func TestLoadGlobalPrefixReplaces(t *testing.T) {
	f := newFixture(t)
	f.file("templates/a.tmpl", "a\n")
	f.file("conf.d/a.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\nprefix = \"/prod\"\nkeys = [\"db\"]\n")
	rs, err := f.load(Defaults{Prefix: "staging/"})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Prefix != "/staging" {
		t.Errorf("Prefix = %q, want /staging", rs[0].Prefix)
	}
	if got := rs[0].Prefixes(); !reflect.DeepEqual(got, []string{"/staging/db"}) {
		t.Errorf("Prefixes() = %v", got)
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	f := newFixture(t)
	f.file("templates/a.tmpl", "a\n")
	good := "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\n"
	f.file("conf.d/0good.toml", good)
	cases := map[string]struct{ body, want string }{
		"syntax.toml":   {"[template]\nsrc = \"a.tmpl\"\ndest = /tmp/x\n", "line 3"},
		"modeint.toml":  {good + "\nmode = 644\n", "line 5"},
		"modebad.toml":  {good + "mode = \"rw-r--r--\"\n", "line 4"},
		"keystype.toml": {good + "keys = \"/db\"\n", "line 4"},
		"wait.toml":     {good + "wait = \"5s:1s\"\n", "line 4"},
		"missing.toml":  {good + "missingkey = \"zero\"\n", "line 4"},
		"nosrc.toml":    {"[template]\ndest = \"/tmp/a\"\n", "src is required"},
		"nodest.toml":   {"[template]\nsrc = \"a.tmpl\"\n", "dest is required"},
		"notable.toml":  {"src = \"a.tmpl\"\n", "no [template] table"},
		"owner.toml":    {good + "owner = \"no-such-user-reconf\"\n", "owner"},
		"cmd.toml":      {good + "check_cmd = \"{{.src\"\n", "check_cmd"},
	}
	for name, c := range cases {
		f.file("conf.d/"+name, c.body)
	}
	rs, err := f.load(Defaults{})
	if len(rs) != 1 || rs[0].Name != "0good.toml" {
		t.Errorf("good resources: got %d, want only 0good.toml", len(rs))
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(cases) {
		t.Errorf("got %d errors, want %d:\n%v", len(lines), len(cases), err)
	}
	for name, c := range cases {
		found := false
		for _, l := range lines {
			if strings.Contains(l, "conf.d/"+name+":") {
				found = true
				if !strings.Contains(l, c.want) {
					t.Errorf("%s: error %q does not mention %q", name, l, c.want)
				}
			}
		}
		if !found {
			t.Errorf("%s: no error names the file:\n%v", name, err)
		}
	}
}

func TestLoadWarnsUnknownKeys(t *testing.T) {
	f := newFixture(t)
	f.file("templates/a.tmpl", "a\n")
	f.file("conf.d/a.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\nreload_command = \"x\"\n[other]\nk = 1\n")
	if _, err := f.load(Defaults{}); err != nil {
		t.Fatal(err)
	}
	log := f.log.String()
	for _, want := range []string{"conf.d/a.toml", "key=template.reload_command", "key=other.k", "level=WARN"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not contain %q:\n%s", want, log)
		}
	}
}

func TestLoadTemplateParseError(t *testing.T) {
	f := newFixture(t)
	f.file("templates/bad.tmpl", "ok\n{{ if }}\n")
	f.file("conf.d/bad.toml", "[template]\nsrc = \"bad.tmpl\"\ndest = \"/tmp/a\"\n")
	rs, err := f.load(Defaults{})
	if err == nil || len(rs) != 0 {
		t.Fatalf("Load = %d resources, %v; want an error", len(rs), err)
	}
	for _, want := range []string{"bad.toml", "bad.tmpl", "2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadMissingConfD(t *testing.T) {
	dir := t.TempDir()
	buf := &syncBuffer{}
	rs, err := Load(Defaults{ConfDir: dir, Log: slog.New(slog.NewTextHandler(buf, nil))})
	if err != nil || rs != nil {
		t.Errorf("Load without conf.d = %v, %v; want nothing", rs, err)
	}
	if !strings.Contains(buf.String(), "no conf.d folder") {
		t.Errorf("missing conf.d not logged: %q", buf)
	}
}
