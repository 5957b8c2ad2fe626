package watch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
)

// get fetches url and returns the status code and body (0 and the error text when the
// request fails).
func get(url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAddr watches etcd with -metrics-addr and a template that needs a key the store
// does not hold yet: /health answers 200, /ready 503 until the first render succeeds and 200
// after it, and /metrics counts renders.
func TestMetricsAddr(t *testing.T) {
	s := newEnv(t).get(t, "etcd")
	dir := t.TempDir()
	confdir := filepath.Join(dir, "confdir")
	dest := filepath.Join(dir, "ready.conf")
	addResource(t, confdir, "ready", fmt.Sprintf("dest = %q\nprefix = \"/met\"\nkeys = [\"/need\"]", dest),
		"need={{getv \"/need\"}}\n")
	addr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t))
	base := "http://" + addr
	p := startReconf(t, dir, watchArgs(s, confdir, "-metrics-addr", addr)...)

	eventually(t, startDeadline, "/health never answered 200\n"+p.tail(20), func() bool {
		code, _ := get(base + "/health")
		return code == http.StatusOK
	})
	// The render has failed (missing key) and is retried: /ready stays 503 throughout.
	waitLog(t, p, 0, retryLine, startDeadline, "the render of a missing key did not fail")
	for i := range 5 {
		if code, body := get(base + "/ready"); code != http.StatusServiceUnavailable {
			t.Fatalf("/ready before the first render (poll %d): %d %q, want 503", i, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := readFileErr(dest); err == nil {
		t.Fatalf("dest written although the key is missing: %q", readFile(dest))
	}

	s.Put(t, "/met/need", "yes")
	waitFile(t, p, dest, "need=yes\n", recoverDeadline, "render once the key exists")
	eventually(t, changeDeadline, "/ready not 200 after the first render\n"+p.tail(20), func() bool {
		code, _ := get(base + "/ready")
		return code == http.StatusOK
	})
	code, body := get(base + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	for _, want := range []string{
		"reconf_renders_total{",
		`reconf_renders_total{resource="ready.toml",result="written"} 1`,
		`reconf_renders_total{resource="ready.toml",result="error"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(body, "reconf_"))
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
