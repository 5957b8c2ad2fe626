package discovery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/reconf/reconf/backends"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memBackend is an in-memory backends.Backend.
type memBackend struct {
	mu   sync.Mutex
	kv   map[string]string
	gets []string
	err  error
}

func (m *memBackend) Get(_ context.Context, prefixes []string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	m.gets = append(m.gets, prefixes...)
	return backends.Filter(maps.Clone(m.kv), backends.Dedupe(prefixes)), nil
}

func (m *memBackend) Close() error { return nil }

func (m *memBackend) set(k, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[k] = v
}

func newLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func ids(svcs []backends.Service) string {
	var s []string
	for _, x := range svcs {
		s = append(s, x.ID)
	}
	return strings.Join(s, ",")
}

func TestServiceKeyConvention(t *testing.T) {
	b := &memBackend{kv: map[string]string{
		"/services":                "",
		"/services/web":            "",
		"/services/web/web-2":      `{"id":"web-2","name":"web","address":"10.0.0.2","port":8080,"tags":["v2","blue"],"meta":{"zone":"a"},"node":"n2"}`,
		"/services/web/web-1":      `{"address":"10.0.0.1","port":8080,"tags":["v1"]}`,
		"/services/web/manual":     "10.0.0.9:81",
		"/services/web/broken":     `{"address":"10.0.0.3","port":`,
		"/services/web/noport":     `{"address":"10.0.0.3"}`,
		"/services/web/a/b":        "10.0.0.4:80",
		"/services/web-replica":    "",
		"/services/web-replica/r1": "10.1.0.1:80",
		"/services/db/db-1":        `{"address":"10.2.0.1","port":5432,"tags":["primary"]}`,
	}}
	log, buf := newLog()
	d := New(b, Config{Log: log})
	ctx := context.Background()

	svcs, err := d.Service(ctx, "web", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(svcs); got != "manual,web-1,web-2" {
		t.Fatalf("ids = %q, want manual,web-1,web-2", got)
	}
	m := svcs[0]
	if m.Name != "web" || m.Address != "10.0.0.9" || m.Port != 81 {
		t.Errorf("manual = %+v", m)
	}
	w2 := svcs[2]
	if w2.Node != "n2" || w2.Meta["zone"] != "a" || len(w2.Tags) != 2 {
		t.Errorf("web-2 = %+v", w2)
	}
	if svcs[1].Name != "web" {
		t.Errorf("web-1 name = %q, want it from the folder", svcs[1].Name)
	}
	for _, key := range []string{"/services/web/broken", "/services/web/noport"} {
		if !strings.Contains(buf.String(), "key="+key) {
			t.Errorf("no warning naming %s in:\n%s", key, buf)
		}
	}
	if strings.Contains(buf.String(), "/services/web/a/b") {
		t.Errorf("a deeper key was read as an instance:\n%s", buf)
	}

	// Warned once per distinct value.
	n := strings.Count(buf.String(), "level=WARN")
	if _, err := d.Service(ctx, "web", "", ""); err != nil {
		t.Fatal(err)
	}
	if m := strings.Count(buf.String(), "level=WARN"); m != n {
		t.Errorf("warnings repeated: %d then %d", n, m)
	}
	b.set("/services/web/broken", "nonsense")
	if _, err := d.Service(ctx, "web", "", ""); err != nil {
		t.Fatal(err)
	}
	if m := strings.Count(buf.String(), "level=WARN"); m != n+1 {
		t.Errorf("a new malformed value was not warned about: %d then %d", n, m)
	}

	tagged, err := d.Service(ctx, "web", "v2", "")
	if err != nil || ids(tagged) != "web-2" {
		t.Fatalf("tag v2: %q, %v", ids(tagged), err)
	}
	none, err := d.Service(ctx, "nosuch", "", "")
	if err != nil || none == nil || len(none) != 0 {
		t.Fatalf("missing service: %v, %v (want an empty, non-nil list)", none, err)
	}
	if _, err := d.Service(ctx, "web", "", "dc2"); !errors.Is(err, ErrDatacenter) {
		t.Errorf("dc on key convention: %v, want ErrDatacenter", err)
	}
	for _, bad := range []string{"", "a/b"} {
		if _, err := d.Service(ctx, bad, "", ""); !errors.Is(err, ErrName) {
			t.Errorf("name %q: %v, want ErrName", bad, err)
		}
	}

	names, err := d.ServiceNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 || strings.Join(names["web"], ",") != "blue,v1,v2" ||
		strings.Join(names["db"], ",") != "primary" || len(names["web-replica"]) != 0 {
		t.Errorf("names = %v", names)
	}
}

func TestServiceCustomPrefixAndErrors(t *testing.T) {
	b := &memBackend{kv: map[string]string{"/prod/svc/api/a": "127.0.0.1:1", "/services/api/b": "127.0.0.1:2"}}
	d := New(b, Config{Prefix: "prod/svc/"})
	svcs, err := d.Service(context.Background(), "api", "", "")
	if err != nil || ids(svcs) != "a" {
		t.Fatalf("got %q, %v", ids(svcs), err)
	}
	if d.Prefix() != "/prod/svc" {
		t.Errorf("prefix %q", d.Prefix())
	}
	b.err = backends.ErrUnavailable
	if _, err := d.Service(context.Background(), "api", "", ""); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if _, err := d.ServiceNames(context.Background()); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		value string
		ok    bool
	}{
		{`{"address":"h","port":1}`, true},
		{" [::1]:80 ", true},
		{"h:65535", true},
		{"h:65536", false},
		{"h:0", false},
		{":80", false},
		{"h", false},
		{"", false},
		{`{"address":"h","port":"80"}`, false},
		{`{"address":"","port":80}`, false},
	} {
		s, err := Decode("n", "i", c.value)
		if (err == nil) != c.ok {
			t.Errorf("Decode(%q) = %+v, %v; want ok=%v", c.value, s, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q): %v is not ErrMalformed", c.value, err)
		}
	}
	in := backends.Service{ID: "x", Name: "n", Address: "h", Port: 9, Tags: []string{"t"}, Meta: map[string]string{"k": "v"}, Node: "nd"}
	enc, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode("n", "other", string(enc))
	if err != nil || out.ID != "x" || out.Port != 9 || out.Meta["k"] != "v" || out.Node != "nd" {
		t.Errorf("round trip: %+v, %v", out, err)
	}
	if k := Key("", "web", "w1"); k != "/services/web/w1" {
		t.Errorf("Key = %q", k)
	}
	if k := Key("/", "web", "w1"); k != "/web/w1" {
		t.Errorf("Key root = %q", k)
	}
}
