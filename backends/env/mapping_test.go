package env

import (
	"context"
	"maps"
	"testing"
)

func TestMapping(t *testing.T) {
	for key, name := range map[string]string{
		"/app/db/host":   "APP_DB_HOST",
		"/app/db-x/a.b":  "APP_DB-X_A.B",
		"/":              "",
		"/app":           "APP",
		"/with space/x":  "WITH SPACE_X",
		"/app/db/port/0": "APP_DB_PORT_0",
	} {
		if got := VarName(key); got != name {
			t.Errorf("VarName(%q) = %q, want %q", key, got, name)
		}
		if key != "/" {
			if got := Key(name); got != key {
				t.Errorf("Key(%q) = %q, want %q", name, got, key)
			}
		}
	}
}

func TestGet(t *testing.T) {
	c := &Client{environ: func() []string {
		return []string{
			"APP_DB_HOST=h",
			"APP_DB_PORT=5432",
			"APP_DB=leaf",
			"APP_DB-REPLICA_HOST=r", // shares the string prefix APP_DB
			"APP_DBX=x",
			"app_db_user=lower", // lower case: confd matches the upper-cased prefix only
			"HTTP_PROXY=upper",
			"http_proxy=lower",
			"EMPTY=",
			"EQ=a=b",
			"=C:=weird", // Windows-style entries without a name are skipped
		}
	}}
	get := func(prefixes ...string) map[string]string {
		t.Helper()
		kv, err := c.Get(context.Background(), prefixes)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	for _, tc := range []struct {
		prefixes []string
		want     map[string]string
	}{
		{[]string{"/app/db"}, map[string]string{"/app/db/host": "h", "/app/db/port": "5432", "/app/db": "leaf"}},
		{[]string{"/app/db/*"}, map[string]string{"/app/db/host": "h", "/app/db/port": "5432", "/app/db": "leaf"}},
		{[]string{"/app/db/host", "/eq"}, map[string]string{"/app/db/host": "h", "/eq": "a=b"}},
		{[]string{"/empty"}, map[string]string{"/empty": ""}},
		{[]string{"/http"}, map[string]string{"/http/proxy": "upper"}},
		{[]string{"/nothing"}, map[string]string{}},
	} {
		if got := get(tc.prefixes...); !maps.Equal(got, tc.want) {
			t.Errorf("Get(%q) = %v, want %v", tc.prefixes, got, tc.want)
		}
	}
	// The root reads every variable, lower-case ones too; of two variables for one key the
	// upper-case one wins whatever the order.
	root := get("/")
	if root["/app/db/user"] != "lower" || root["/http/proxy"] != "upper" || len(root) != 9 {
		t.Errorf("Get(/) = %v", root)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, []string{"/"}); err == nil {
		t.Error("Get on a cancelled context succeeded")
	}
}
