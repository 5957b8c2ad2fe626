package resource

import (
	"maps"
	"slices"
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

// TestRelativeSorted: from a sorted snapshot the render gets the same keys and values as from
// the map, as sorted keys when that order survives (else relative's map).
func TestRelativeSorted(t *testing.T) {
	for _, kv := range []map[string]string{
		{"/prod/db/host": "h", "/prod/db": "d", "/prod/db-replica/host": "r", "/prod//web/": "w", "/other": "o"},
		{"/prod/db/host": "h", "/prod/db": "d", "/prod/db-replica/host": "r", "/prod/web": "w", "/other": "o"},
		{"/prod/a//b": "1", "/prod/a/a": "2", "/prod/a/b": "3"}, // "/a//b" cleans onto "/a/b"
	} {
		keys := slices.Sorted(maps.Keys(kv))
		values := make([]string, len(keys))
		for i, k := range keys {
			values[i] = kv[k]
		}
		for _, tc := range []struct {
			prefix string
			keys   []string
		}{
			{"/prod", []string{"/db"}}, {"/prod", []string{"/"}}, {"/", []string{"/prod/db"}},
			{"/", []string{"/"}}, {"/", []string{"/nothing"}}, {"/prod", []string{"/a", "/web"}},
		} {
			r := &Resource{Name: "t", Prefix: tc.prefix, Keys: tc.keys}
			want := r.relative(kv)
			d := r.relativeSorted(keys, values)
			got := d.KV
			if d.Keys != nil {
				got = map[string]string{}
				for i, k := range d.Keys {
					if i > 0 && d.Keys[i-1] >= k {
						t.Fatalf("prefix %q keys %q: keys not sorted: %v", tc.prefix, tc.keys, d.Keys)
					}
					got[k] = d.Values[i]
				}
			}
			if (d.Keys == nil) == (d.KV == nil) || len(d.Keys) != len(d.Values) {
				t.Fatalf("prefix %q keys %q: want exactly one of Keys and KV, got %v, %v and %v", tc.prefix, tc.keys, d.Keys, d.Values, d.KV)
			}
			if !maps.Equal(got, want) && len(kv) != 3 { // the merged keys of the last case may take either value
				t.Errorf("prefix %q keys %q: relativeSorted = %v, want %v", tc.prefix, tc.keys, got, want)
			}
			if len(got) != len(want) {
				t.Errorf("prefix %q keys %q: relativeSorted = %v, want %v", tc.prefix, tc.keys, got, want)
			}
		}
	}
	clean := []string{"/a/b", "/a/c"}
	r := &Resource{Name: "t", Prefix: "/", Keys: []string{"/a"}}
	if d := r.relativeSorted(clean, []string{"1", "2"}); &d.Keys[0] != &clean[0] {
		t.Fatal("relativeSorted copied keys that needed no change")
	}
}
