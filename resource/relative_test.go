package resource

import (
	"maps"
	"testing"
)

// TestRelative: keys are kept by path under the resource's prefixes and stored relative to
// its prefix with a leading '/'; when nothing changes the snapshot itself is used.
func TestRelative(t *testing.T) {
	kv := map[string]string{"/prod/db/host": "h", "/prod/db": "d", "/prod/db-replica/host": "r", "/prod//web/": "w", "/other": "o"}
	for _, tc := range []struct {
		prefix string
		keys   []string
		want   map[string]string
	}{
		{"/prod", []string{"/db"}, map[string]string{"/db/host": "h", "/db": "d"}},
		{"/prod", []string{"/"}, map[string]string{"/db/host": "h", "/db": "d", "/db-replica/host": "r", "/web": "w"}},
		{"/", []string{"/prod/db"}, map[string]string{"/prod/db/host": "h", "/prod/db": "d"}},
		{"/", []string{"/nothing"}, map[string]string{}},
	} {
		r := &Resource{Name: "t", Prefix: tc.prefix, Keys: tc.keys}
		if got := r.relative(kv); !maps.Equal(got, tc.want) {
			t.Errorf("prefix %q keys %q: relative = %v, want %v", tc.prefix, tc.keys, got, tc.want)
		}
	}
	clean := map[string]string{"/a/b": "1", "/a/c": "2"}
	r := &Resource{Name: "t", Prefix: "/", Keys: []string{"/a"}}
	got := r.relative(clean)
	got["/mark"] = "x" // the same map comes back: no copy was made
	if clean["/mark"] != "x" {
		t.Fatal("relative copied a snapshot that needed no change")
	}
}
