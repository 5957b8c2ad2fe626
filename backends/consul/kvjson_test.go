package consul

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
)

// TestDecodeKVs checks the streaming decoder against encoding/json on the same bodies, read
// whole and one byte at a time.
func TestDecodeKVs(t *testing.T) {
	for _, body := range []string{
		`[]`,
		` [ ] `,
		`[{"LockIndex":0,"Key":"a/b","Flags":0,"Value":"aGVsbG8=","CreateIndex":5,"ModifyIndex":7}]`,
		`[{"Key":"a/","Value":null},{"Key":"a/x","Value":""},{"key":"a/y","value":"eQ=="}]`,
		"[\n  {\n    \"Value\": \"dg==\",\n    \"Key\": \"k\\u0026\\\"q\\\\\\u00e9\\ud83d\\ude00\",\n    \"Session\": \"s\\\"}\"\n  }\n]\n",
		`[{"Key":"n","Flags":-1.5e3,"X":{"a":[1,{"b":"]}"}],"c":null},"Y":[true,false],"Value":"AAEC"}]`,
		`[{"Key":"only-key"},{"Value":"dg=="}]`,
	} {
		var want []struct {
			Key   string
			Value []byte
		}
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		for _, slow := range []bool{false, true} {
			r := iotest.DataErrReader(strings.NewReader(body))
			if slow {
				r = iotest.OneByteReader(strings.NewReader(body))
			}
			var got api.KVPairs
			err := decodeKVs(r, func(k, v []byte) {
				got = append(got, &api.KVPair{Key: string(k), Value: append([]byte(nil), v...)})
			})
			if err != nil {
				t.Fatalf("%s (slow %v): %v", body, slow, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: got %d entries, want %d", body, len(got), len(want))
			}
			for i := range got {
				if got[i].Key != want[i].Key || string(got[i].Value) != string(want[i].Value) {
					t.Errorf("%s (slow %v) [%d]: got %q=%q, want %q=%q", body, slow, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
				}
			}
		}
	}
}

// TestDecodeKVsMalformed: a body that is not a list of objects fails (numbers and literals of
// fields other than Key and Value are skipped, not checked).
func TestDecodeKVsMalformed(t *testing.T) {
	for _, body := range []string{
		``, `[`, `{}`, `[{"Key":"a"`, `[{"Key":"a"}`, `[{"Key":1}]`, `[{"Key":"a","Value":"!!"}]`,
		`[{"Key":"a"} {"Key":"b"}]`, `[{"Key" "a"}]`, `[{"Key":"a","X":}]`, `[{"Key":"a\"}]`, `[1]`,
		`[{"Key":"a","Value":nope}]`,
	} {
		err := decodeKVs(iotest.OneByteReader(strings.NewReader(body)), func(k, v []byte) {})
		if !errors.Is(err, errSyntax) {
			t.Errorf("%q: got %v, want a syntax error", body, err)
		}
	}
}

func TestCleanPathAndUnderPrefix(t *testing.T) {
	for _, p := range []string{"/", "/a", "/a/b", "/a/", "//a", "/a//b", "/./a", "/a/.", "/a/..", "/..", "/.a", "/a..", "/a/.b/c", "/.../x"} {
		if got, want := cleanPath([]byte(p)), path.Clean(p) == p; got != want {
			t.Errorf("cleanPath(%q) = %v, want %v", p, got, want)
		}
		for _, prefix := range []string{"/", "/a", "/a/b", "/ab"} {
			if got, want := underPrefix([]byte(p), prefix), backends.UnderPrefix(p, prefix); got != want {
				t.Errorf("underPrefix(%q, %q) = %v, want %v", p, prefix, got, want)
			}
		}
	}
}

// A fake agent checks the request Get sends itself, and how it reads 404s and broken bodies.
func TestListRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.URL.Query()["recurse"]; !ok || r.Header.Get("Accept-Encoding") != "identity" {
			http.Error(w, "want ?recurse, uncompressed on loopback", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/v1/kv/app":
			_, _ = w.Write([]byte(`[{"Key":"app","Value":"cm9vdA=="},{"Key":"app-x/k","Value":"eA=="},` +
				`{"Key":"app/d/","Value":null},{"Key":"app/e/","Value":null},{"Key":"app/e","Value":"ZQ=="},{"Key":"app//a/./b","Value":"Yg=="}]`))
		case "/v1/kv/other":
			_, _ = w.Write([]byte(`[{"Key":"other/k","Value":"bw=="}]`))
		case "/v1/kv/broken":
			_, _ = w.Write([]byte(`[{"Key":"broken/k","Value":"bw=="}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := New(Config{Address: srv.Listener.Addr().String(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv, err := c.Get(context.Background(), []string{"/app", "/other", "/missing"})
	want := map[string]string{"/app": "root", "/app/d": "", "/app/e": "e", "/app/a/b": "b", "/other/k": "o"}
	if err != nil || !maps.Equal(kv, want) {
		t.Errorf("Get = %q, %v; want %q", kv, err, want)
	}
	_, err = c.Get(context.Background(), []string{"/broken"})
	if !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, errSyntax) || !strings.Contains(err.Error(), srv.Listener.Addr().String()) {
		t.Errorf("Get of a truncated body: %v, want backends.ErrUnavailable naming the agent", err)
	}
}
