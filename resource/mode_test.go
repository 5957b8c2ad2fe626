package resource

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseMode: modes are read as confd reads them, strconv.ParseUint(s, 0, 32).
func TestParseMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{
		"0644":   0o644,
		"0o600":  0o600,
		"0x1a4":  0o644, // hex
		"420":    0o644, // decimal
		"384":    0o600,
		"493":    0o755,
		"644":    0o204 | os.ModeSticky, // decimal 644 = 01204, as in confd
		"04755":  0o755 | os.ModeSetuid,
		"02755":  0o755 | os.ModeSetgid,
		"01777":  0o777 | os.ModeSticky,
		"0":      0,
		"0_644":  0o644, // base 0 takes underscores
		"0b1100": 0o14,
	} {
		if got, err := parseMode(in); err != nil || got != want {
			t.Errorf("parseMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":        `invalid mode ""`,
		"rw":      `invalid mode "rw"`,
		"0899":    `invalid mode "0899"`,
		" 0644":   `invalid mode " 0644"`,
		"-1":      `invalid mode "-1"`,
		"017777":  `invalid mode "017777": 017777 is beyond 07777`,
		"4755":    `invalid mode "4755": without a leading 0 it is decimal 4755 (011223), beyond 07777; write "04755" for octal`,
		"0x10000": `invalid mode "0x10000": 0200000 is beyond 07777`,
	} {
		_, err := parseMode(in)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("parseMode(%q) = %v; want %s…", in, err, want)
		}
	}
}

func TestMistypedOctal(t *testing.T) {
	for in, want := range map[string]bool{
		"644": true, "755": true, "600": true, "640": true, "700": true, "444": true, "664": true,
		"775": true, "750": true, "1777": true, "400": true,
		"420": false, "384": false, "493": false, "256": false, "416": false, "436": false,
		"0644": false, "0x1a4": false, "4755": true, "8": false,
	} {
		if got := mistypedOctal(in); got != want {
			t.Errorf("mistypedOctal(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestLoadModeWarning: a mode that looks like octal without its 0 loads as confd loads it and
// is warned about once, naming the file and line, the mode it becomes and the quoted octal form.
func TestLoadModeWarning(t *testing.T) {
	f := newFixture(t)
	f.file("templates/a.tmpl", "a\n")
	f.file("conf.d/a.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\n\n  mode = \"644\"\n")
	f.file("conf.d/b.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/b\"\nmode = \"420\"\n")
	f.file("conf.d/c.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/c\"\nmode = \"0644\"\n")
	for range 2 { // a reload does not warn again
		rs, err := f.load(Defaults{})
		if err != nil || len(rs) != 3 {
			t.Fatalf("Load = %d resources, %v", len(rs), err)
		}
		for i, want := range []os.FileMode{0o204 | os.ModeSticky, 0o644, 0o644} {
			if !rs[i].ModeSet || rs[i].Mode != want {
				t.Errorf("%s: mode %v, want %v", rs[i].Name, rs[i].Mode, want)
			}
		}
	}
	log := f.log.String()
	want := fmt.Sprintf(`%s:5: mode \"644\" has no leading 0, so it is decimal, as in confd: the file gets mode 01204; write mode = \"0644\" for octal`,
		filepath.Join(f.confDir, "conf.d/a.toml"))
	if n := strings.Count(log, want); n != 1 {
		t.Errorf("want the warning %q once, got %d times in:\n%s", want, n, log)
	}
	if n := strings.Count(log, "has no leading 0"); n != 1 {
		t.Errorf("%d mode warnings, want 1:\n%s", n, log)
	}
}
