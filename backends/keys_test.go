package backends_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/reconf/reconf/backends"
)

func TestCleanPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"":             "/",
		"/":            "/",
		"*":            "/",
		"/*":           "/",
		"app":          "/app",
		"/app":         "/app",
		"/app/":        "/app",
		"/app/*":       "/app",
		"app/*":        "/app",
		"//app//db/":   "/app/db",
		"/app/./db":    "/app/db",
		"/app/x/../db": "/app/db",
		"/../app":      "/app",
		"/app/db*":     "/app/db*", // only a trailing "/*" is a wildcard
		"/app/*/db":    "/app/*/db",
		"/app db/x-y":  "/app db/x-y",
	} {
		if got := backends.CleanPrefix(in); got != want {
			t.Errorf("CleanPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnderPrefix(t *testing.T) {
	for _, c := range []struct {
		key, prefix string
		want        bool
	}{
		{"/app/db", "/app/db", true},
		{"/app/db/host", "/app/db", true},
		{"/app/db/a/b", "/app/db", true},
		{"/app/db-replica", "/app/db", false},
		{"/app/db-replica/host", "/app/db", false},
		{"/app/dbx", "/app/db", false},
		{"/app", "/app/db", false},
		{"/ap", "/app", false},
		{"/app", "/", true},
		{"/", "/", true},
		{"/x/y", "/", true},
		{"/apple", "/app", false},
	} {
		if got := backends.UnderPrefix(c.key, c.prefix); got != c.want {
			t.Errorf("UnderPrefix(%q, %q) = %v, want %v", c.key, c.prefix, got, c.want)
		}
	}
}

func TestDedupe(t *testing.T) {
	for _, c := range []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"/b", "/a"}, []string{"/a", "/b"}},
		{[]string{"/app/db", "/app"}, []string{"/app"}},
		{[]string{"/app/db/*", "app/db/host", "/app/db/"}, []string{"/app/db"}},
		// "/app-x" sorts between "/app" and "/app/db" and must not break the covering check.
		{[]string{"/app/db", "/app-x", "/app"}, []string{"/app", "/app-x"}},
		{[]string{"/app/db", "/app/db-replica"}, []string{"/app/db", "/app/db-replica"}},
		{[]string{"/x", "/", "/y/z"}, []string{"/"}},
		{[]string{"/a", "/a", "/a"}, []string{"/a"}},
	} {
		got := backends.Dedupe(c.in)
		if !slices.Equal(got, c.want) {
			t.Errorf("Dedupe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFilter(t *testing.T) {
	kv := map[string]string{
		"/app/db":              "leaf",
		"/app/db/host":         "h",
		"/app/db-replica/host": "r",
		"/app/dbx":             "x",
		"/other":               "o",
	}
	for _, c := range []struct {
		prefixes []string
		want     map[string]string
	}{
		{[]string{"/app/db"}, map[string]string{"/app/db": "leaf", "/app/db/host": "h"}},
		{[]string{"/app/db/host", "/other"}, map[string]string{"/app/db/host": "h", "/other": "o"}},
		{[]string{"/nothing"}, map[string]string{}},
		{nil, map[string]string{}},
		{[]string{"/"}, kv},
	} {
		got := backends.Filter(kv, c.prefixes)
		if !maps.Equal(got, c.want) {
			t.Errorf("Filter(%q) = %v, want %v", c.prefixes, got, c.want)
		}
	}
}
