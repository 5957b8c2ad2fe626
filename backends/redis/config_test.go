package redis

import (
	"errors"
	"strings"
	"testing"

	"github.com/reconf/reconf/backends"
)

// A node URL that cannot be used is named in the error without its password.
func TestParseNodeErrorHidesPassword(t *testing.T) {
	for _, in := range []string{
		"redis://user:s3cretpw@h:6379/notadb",
		"rediss://:s3cretpw@h:notaport",
		"redis://user:s3cretpw@h:6379/-1",
	} {
		_, _, err := ParseNode(in)
		if !errors.Is(err, backends.ErrConfig) {
			t.Errorf("ParseNode(%q) = %v, want backends.ErrConfig", in, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("ParseNode(%q): the error shows the password: %v", in, err)
		}
		if !strings.Contains(err.Error(), "<redacted>@h") {
			t.Errorf("ParseNode(%q): the error does not name the node: %v", in, err)
		}
	}
}

func TestSafeNode(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:6379":          "127.0.0.1:6379",
		"redis://h:6379/0":        "redis://h:6379/0",
		"redis://u:p@h:6379/0":    "redis://<redacted>@h:6379/0",
		"rediss://:p@w@h:1":       "rediss://<redacted>@h:1",
		"unix:///run/r.sock?db=1": "unix:///run/r.sock?db=1",
		"redis://h:1/a@b":         "redis://h:1/a@b",
	} {
		if got := safeNode(in); got != want {
			t.Errorf("safeNode(%q) = %q, want %q", in, got, want)
		}
	}
}

// The credentials of a redis:// node are used unless the flags give some.
func TestURLCredentials(t *testing.T) {
	c, err := FromOptions(backends.Options{Nodes: []string{"h:1", "redis://u:urlpw@h:2/3"}})
	if err != nil || c.Username != "u" || c.Password != "urlpw" {
		t.Errorf("URL credentials: %q:%q, %v; want u:urlpw", c.Username, c.Password, err)
	}
	c, err = FromOptions(backends.Options{Nodes: []string{"rediss://:urlpw@h:2"}, Password: "flagpw"})
	if err != nil || c.Username != "" || c.Password != "flagpw" {
		t.Errorf("-password and a URL password: %q:%q, %v; want the flag's", c.Username, c.Password, err)
	}
	c, err = FromOptions(backends.Options{Nodes: []string{"redis://:urlpw@h:2"}, ClientKey: "keypw"})
	if err != nil || c.Password != "keypw" {
		t.Errorf("-client-key and a URL password: %q, %v; want the -client-key one", c.Password, err)
	}
}
